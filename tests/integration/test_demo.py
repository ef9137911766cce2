"""``ctinsights demo`` (what ``make demo`` runs) as a process: the whole local pipeline."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_demo_runs_the_pipeline_and_finds_its_bursts() -> None:
    """Broker, simulated stream, worker and output printer, ended on its own (bounded)."""
    done = subprocess.run(
        [sys.executable, "-m", "streams", "demo", "--days", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert "worker running; metrics on http://127.0.0.1:" in out
    printed = re.findall(r"^(?:Start|End) +\d{4}-\d\d-\d\dT.* top principal ", out, flags=re.M)
    found = re.findall(r"^  found ", out, flags=re.M)
    missed = re.findall(r"^  MISSED ", out, flags=re.M)
    assert found, out[-3000:]
    assert len(found) >= len(missed), out[-3000:]
    assert printed, out[-3000:]  # insights were printed as they arrived, before the summary
    assert out.index(printed[0]) < out.index("records through Kafka and the worker")
    assert out.rstrip().endswith("stopped: worker checkpointed, broker shut down")
