"""``gsf bench train`` on a tiny configuration: its table, its files, its argument checks and a compiled run
(with the "eager" backend, which captures the graphs but generates no code). Measuring is the command's job;
these tests hold what the table claims about its own figures."""

import csv

import pytest
import torch

from gsf.bench.train import PHASES, Settings, bench_train, compute_s, loader_split, median_index, median_pass
from gsf.cli import main
from gsf.errors import GSFConfigError

TINY = dict(backbone="resnet_tiny", frames=2, size=32, batch=2, workers=0, clips=4, repeats=3, threads=1,
            video_size=32, video_frames=6, num_classes=2)
ROUNDING = 0.0005  # the table's seconds are rounded to ms


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-train")
    return bench_train(Settings(**TINY), out_dir=out), out


def test_the_table_has_a_row_per_model_tsn_first_with_every_phase_column_filled(tiny_run):
    rows, _ = tiny_run
    assert [row["temporal"] for row in rows] == ["none", "gsf"]
    for row in rows:
        for column in (*PHASES, "epoch_s", "clips_per_s", "other_s", "ratio_epoch", "ratio_compute",
                       "warmup_epoch_s", "decode_ms_per_clip", "augment_ms_per_clip", "item_ms_per_clip",
                       "decode_share", "augment_share"):
            assert row[column] is not None and row[column] >= 0, (row["model"], column)
        assert row["forward_s"] > 0 and row["backward_s"] > 0 and row["decode_ms_per_clip"] > 0
        assert row["augment_ms_per_clip"] > 0
        assert row["steps"] == TINY["clips"] // TINY["batch"]
        assert row["compile_s"] is None and row["mode"] == "eager"
    assert rows[1]["gsf_path"] == "fused" and rows[0]["gsf_path"] == ""


def test_the_phases_add_up_to_no_more_than_the_epoch_and_to_most_of_it(tiny_run):
    rows, _ = tiny_run
    for row in rows:
        phases = sum(row[phase] for phase in PHASES)
        assert phases <= row["epoch_s"] + len(PHASES) * ROUNDING
        assert phases + row["other_s"] == pytest.approx(row["epoch_s"], abs=(len(PHASES) + 1) * ROUNDING)
        assert phases >= 0.8 * row["epoch_s"]


def test_the_epoch_is_the_median_of_the_timed_epochs_and_the_ratios_are_over_tsn(tiny_run):
    rows, _ = tiny_run
    for row in rows:
        epochs = [float(e) for e in row["epochs_s"].split("/")]
        assert len(epochs) == TINY["repeats"]
        assert row["epoch_s"] == pytest.approx(sorted(epochs)[1], abs=ROUNDING)
    tsn, gsf = rows
    assert gsf["ratio_epoch"] == round(gsf["epoch_s"] / tsn["epoch_s"], 3)
    assert gsf["ratio_compute"] == round(compute_s(gsf) / compute_s(tsn), 3)
    assert tsn["ratio_epoch"] == 1.0 and tsn["ratio_compute"] == 1.0


def test_the_shares_are_decode_and_augment_over_the_whole_item(tiny_run):
    rows, _ = tiny_run
    for row in rows:
        assert row["decode_share"] == pytest.approx(row["decode_ms_per_clip"] / row["item_ms_per_clip"], abs=0.01)
        assert row["augment_share"] == pytest.approx(row["augment_ms_per_clip"] / row["item_ms_per_clip"], abs=0.01)
        assert row["decode_share"] + row["augment_share"] <= 1.0 + 0.002


def test_the_csv_and_markdown_are_written_where_asked_with_their_header(tiny_run):
    rows, out = tiny_run
    [csv_file] = out.glob("train-epoch-cpu-float32-pt*-t1-w0.csv")
    with open(csv_file) as f:
        written = list(csv.DictReader(f))
    assert [r["model"] for r in written] == [r["model"] for r in rows]
    assert float(written[1]["ratio_epoch"]) == rows[1]["ratio_epoch"]
    text = csv_file.with_suffix(".md").read_text()
    assert text.startswith("# Training epoch end to end")
    for words in ("torch threads 1", "0 loader workers", "4 clips an epoch", "2 frames", "32 px", "batch 2",
                  "median of 3", "load average at the end", "in parallel with the training loop"):
        assert words in text, words
    assert text.count("| resnet_tiny_") == 2


def test_the_loader_split_times_the_datasets_own_read_and_transform_and_leaves_it_unchanged():
    calls = []

    class Dataset:
        def __init__(self):
            self.transform = self.augment

        def load_frames(self, index):
            calls.append(("read", index))

        def augment(self, index):
            calls.append(("augment", index))

        def __len__(self):
            return 2

        def __getitem__(self, index):
            self.load_frames(index)
            self.transform(index)

    dataset = Dataset()
    split = loader_split(dataset)
    assert calls == [("read", 0), ("augment", 0), ("read", 1), ("augment", 1)]
    assert "load_frames" not in vars(dataset) and dataset.transform == dataset.augment
    assert 0 <= split["decode_ms_per_clip"] + split["augment_ms_per_clip"] <= split["item_ms_per_clip"]


def test_median_index_picks_the_median_and_the_lower_middle_of_an_even_count():
    assert median_index([3.0, 1.0, 2.0]) == 2
    assert median_index([4.0, 1.0, 3.0, 2.0]) == 3


def test_the_median_pass_is_one_measurement_so_its_parts_add_up():
    # per-figure medians of these passes would be decode 6, augment 6 of an item of 10.2: more than the item
    passes = [{"decode": 9.0, "augment": 0.5, "item": 10.0}, {"decode": 0.5, "augment": 9.0, "item": 10.2},
              {"decode": 6.0, "augment": 6.0, "item": 12.5}]
    chosen = median_pass(passes, "item")
    assert chosen is passes[1]
    assert chosen["decode"] + chosen["augment"] <= chosen["item"]


@pytest.mark.parametrize("change, named", [
    (dict(temporal=("gsf", "warp")), "--temporal warp"),
    (dict(clips=1), "--clips 1"),
    (dict(repeats=0), "--repeats 0"),
    (dict(device="tpu"), "--device tpu"),
])
def test_bad_arguments_raise_a_config_error_naming_the_argument_and_value(change, named, tmp_path):
    with pytest.raises(GSFConfigError, match=named):
        bench_train(Settings(**(TINY | change)), out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA device")
def test_device_cuda_without_cuda_raises_a_config_error_naming_it(tmp_path):
    with pytest.raises(GSFConfigError, match="--device cuda"):
        bench_train(Settings(**(TINY | dict(device="cuda"))), out_dir=tmp_path)


def test_gsf_bench_train_reports_a_bad_argument_as_one_error_line(tmp_path, capsys):
    code = main(["bench", "train", "--temporal", "warp", "--out", str(tmp_path)])
    assert code == 2
    assert "--temporal warp" in capsys.readouterr().err


def test_a_compiled_dry_run_with_the_eager_backend_trains_and_reports_its_compile_seconds(tmp_path, capsys):
    code = main(["bench", "train", "--backbone", "resnet_tiny", "--frames", "2", "--size", "32", "--batch", "2",
                 "--workers", "0", "--clips", "2", "--repeats", "1", "--threads", "1", "--video-size", "32",
                 "--video-frames", "6", "--compile", "--compile-backend", "eager", "--out", str(tmp_path)])
    assert code == 0
    [csv_file] = tmp_path.glob("train-epoch-cpu-float32-compile-pt*-t1-w0.csv")
    with open(csv_file) as f:
        rows = list(csv.DictReader(f))
    assert [r["temporal"] for r in rows] == ["none", "gsf"]
    for row in rows:
        assert row["mode"] == "compile (eager)"
        assert float(row["compile_s"]) > 0 and float(row["forward_s"]) > 0 and float(row["backward_s"]) > 0
    assert rows[1]["gsf_path"] == "composed"
    assert "compiling" in capsys.readouterr().out
