"""``ctinsights demo`` (what ``make demo`` runs) as a process: the whole local pipeline."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request


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
    assert re.search(r"insight console on http://127\.0\.0\.1:\d+/", out)
    printed = re.findall(r"^(?:Start|End) +\d{4}-\d\d-\d\dT.* top principal ", out, flags=re.M)
    found = re.findall(r"^  found ", out, flags=re.M)
    missed = re.findall(r"^  MISSED ", out, flags=re.M)
    assert found, out[-3000:]
    assert len(found) >= len(missed), out[-3000:]
    assert printed, out[-3000:]  # insights were printed as they arrived, before the summary
    assert out.index(printed[0]) < out.index("records through Kafka and the worker")
    assert out.rstrip().endswith("stopped: worker checkpointed, broker shut down")


def test_the_demo_serves_its_insights_on_the_console_until_stopped() -> None:
    """``demo --serve``: after the summary the console lists every insight the demo printed."""
    with subprocess.Popen(
        [sys.executable, "-m", "streams", "demo", "--days", "3", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as demo:
        try:
            assert demo.stdout is not None
            lines = []
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                line = demo.stdout.readline()
                assert line, "the demo ended before serving"
                lines.append(line)
                if line.startswith("serving metrics"):
                    break
            url = re.search(r"insight console on (http://127\.0\.0\.1:\d+)/", lines[-1])
            assert url is not None, lines[-1]
            starts = [x for x in lines if x.startswith("Start ")]
            listed: dict[str, object] = {}
            for _ in range(40):  # the file sink writes what the output topic holds, in a few s
                with urllib.request.urlopen(f"{url.group(1)}/api/insights", timeout=10) as reply:
                    listed = json.load(reply)
                if listed["total"] == len(starts):
                    break
                time.sleep(0.5)
            assert listed["total"] == len(starts) > 0
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
    assert demo.returncode == 0
