"""``gsf bench overhead`` at tiny sizes: a smoke of the command's plumbing, not a measurement.

The command's costly parts are what it measures (a fresh ``gsf train``, a fresh ``gsf sweep`` on a local Ray, a
fresh ``ray.init``, seconds of loader throughput); measuring them is the benchmark's job. Here each program it
times is checked (its ``gsf`` arguments parse, the training configuration loads, the sweep's grid passes
``--dry-run``, the Ray start-up code compiles) and a bare interpreter runs in its place under the command's own
timers; the data set is tiny and each loader rate is taken over a moment. No timing assertions: the table has
every measurement, each a finite positive number."""

import ast
import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from gsf.cli import build_parser, main

MEASURED = ("one tiny trial via gsf train", "the same trial via gsf sweep", "local Ray start-up (ray.init)",
            "loader clips/s, 0 workers", "loader clips/s, 2 workers", "model consumption clips/s (train step)")
# what the Ray start-up program prints: the seconds it took (a stand-in's, here)
TIMED_STAND_IN = "import time; t = time.perf_counter(); time.sleep(0.01); print(time.perf_counter() - t)"


def test_overhead_benchmark_writes_every_measurement_finite_and_positive(tmp_path, monkeypatch):
    import gsf.data
    from experiments import bench_overhead as overhead
    from gsf.bench import data as bench_data
    from gsf.engine import load_config

    real_synthesize, real_rate = gsf.data.synthesize_dataset, bench_data._clips_per_second

    def tiny_dataset(root, **_):  # more training clips than a batch (16): the loader rates see a second batch
        return real_synthesize(root, num_classes=2, videos_per_class=12, num_frames=8, size=32, seed=0)

    def brief_rate(dataset, *, workers, batch_size, min_seconds):
        return real_rate(dataset, workers=workers, batch_size=batch_size, min_seconds=0.05)

    runner = ast.parse(Path(importlib.util.find_spec("experiments.runner").origin).read_text(encoding="utf-8"))
    runner_functions = {node.name for node in runner.body if isinstance(node, ast.FunctionDef)}
    programs = []

    def stand_in(argv, **kwargs):
        """``subprocess.run`` of the benchmark: check the program, then run a bare interpreter in its place."""
        assert argv[0] == sys.executable
        if argv[1:3] == ["-m", "gsf.cli"]:
            args = argv[3:]
            build_parser(args).parse_args(args)
            if args[0] == "train":
                load_config(args[1], overrides=[args[i + 1] for i, flag in enumerate(args) if flag == "--set"])
            else:
                assert main([*args, "--dry-run"]) == 0  # the one-trial grid the benchmark wrote loads and resolves
            programs.append(args[0])
            return subprocess.run([sys.executable, "-c", "pass"], **kwargs)
        assert argv[1] == "-c" and "from experiments.runner import start_ray" in argv[2]
        compile(argv[2], "ray start-up", "exec")
        assert "start_ray" in runner_functions  # what it imports exists (importing Ray here would cost seconds)
        programs.append("ray start-up")
        return subprocess.run([sys.executable, "-c", TIMED_STAND_IN], **kwargs)

    monkeypatch.setattr(gsf.data, "synthesize_dataset", tiny_dataset)
    monkeypatch.setattr(bench_data, "_clips_per_second", brief_rate)
    monkeypatch.setattr(overhead, "subprocess", SimpleNamespace(run=stand_in))

    assert main(["bench", "overhead", "--repeats", "1", "--threads", "1", "--frames", "4", "--out", str(tmp_path)]) == 0
    assert programs == ["train", "sweep", "ray start-up"]
    (table,) = tmp_path.glob("overhead-cpu-pt*-t1.csv")
    assert table.with_suffix(".md").is_file()
    rows = {r["measurement"]: r for r in csv.DictReader(table.open())}
    for name in MEASURED:
        value = float(rows[name]["value"])
        assert math.isfinite(value) and value > 0, (name, value)
    overhead_s = float(rows["sweep overhead per one-trial sweep"]["value"])
    train_s, sweep_s = (float(rows[name]["value"]) for name in MEASURED[:2])
    assert math.isclose(overhead_s, sweep_s - train_s, abs_tol=0.011)  # a difference of two rounded values
    assert rows["input-bound"]["value"] in ("yes", "no")
    markdown = table.with_suffix(".md").read_text()
    assert all(f"| {name} |" in markdown for name in rows)
