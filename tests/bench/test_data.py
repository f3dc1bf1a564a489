"""``gsf bench data`` runs end to end on a tiny configuration and writes its table."""

from gsf.cli import main


def test_bench_data_writes_csv_and_markdown(tmp_path, capsys):
    code = main(["bench", "data", "--frames", "4", "--workers", "0", "--input-size", "32", "--seconds", "0.2",
                 "--out", str(tmp_path)])
    assert code == 0
    assert "clips/s" in capsys.readouterr().out
    csv_files = list(tmp_path.glob("data-loading-train-32px-*.csv"))
    assert len(csv_files) == 1
    header = csv_files[0].read_text().splitlines()[0]
    assert header == "source,num_frames,loader_workers,clips_per_s,frames_per_s,clips_timed"
    assert len(csv_files[0].read_text().splitlines()) == 3  # frames and video rows
    assert csv_files[0].with_suffix(".md").exists()
