"""What `gsf demo` prints about its own cost: wall time only (its trials run in Ray workers whose CPU time
the demo's process cannot see)."""

import time

from analysis import demo_cli as demo


def test_a_step_reports_wall_seconds_and_no_cpu_figure(capsys):
    demo._took("the sweep", time.monotonic() - 5)
    out = capsys.readouterr().out
    assert out.startswith("gsf demo: the sweep took ") and out.rstrip().endswith("s wall")
    assert "CPU" not in out
