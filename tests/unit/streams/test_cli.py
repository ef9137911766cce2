from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streams.cli import main
from streams.lab.simulate import Scenario, generate, render


def test_replay_tree_to_output(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "insights.jsonl"
    assert main(["replay", str(data_dir), "--output", str(out)]) == 0
    assert out.read_text() == ""
    summary = capsys.readouterr().err
    assert "events read:      10" in summary
    assert "rejected:         0" in summary


def test_missing_path_is_an_operator_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/no/such/path"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_config_is_an_operator_error(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[detection]\nsensitivity = 'extreme'\n")
    assert main(["replay", str(data_dir), "--config", str(bad)]) == 2


def test_replay_stdin_streams_records_as_detected(tmp_path: Path) -> None:
    scenario = Scenario(
        days=2,
        accounts=("111122223333",),
        regions=("us-east-1",),
        anomalies=("iam_burst",),
        anomaly_day=1,
        reads_per_minute=0.5,
    )
    lines = b"\n".join(render(generate(scenario))) + b"\nnot json\n"
    proc = subprocess.run(
        [sys.executable, "-m", "streams", "replay", "-", "--warmup-minutes", "60"],
        input=lines,
        capture_output=True,
        check=True,
        timeout=120,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    names = {r["insightDetails"]["eventName"] for r in records}
    assert {"CreateUser", "CreateAccessKey", "AttachUserPolicy"} <= names
    assert "invalid_json" in proc.stderr.decode()


def test_replay_of_files_does_not_depend_on_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # insights in several streams on the last day: when their minutes are scored (all streams
    # in lock-step) decides the order in which they are written
    source = tmp_path / "in.jsonl"
    assert main(["simulate", "-o", str(source), "--days", "13", "--reads-per-minute", "1.5"]) == 0

    def replay(name: str) -> bytes:
        out = tmp_path / name
        assert main(["replay", str(source), "--output", str(out)]) == 0
        return out.read_bytes()

    normal = replay("normal.jsonl")
    ticks = iter(range(0, 10**9, 5))  # every clock reading is 5 s after the previous one
    monkeypatch.setattr("streams.cli.replay.time.monotonic", lambda: float(next(ticks)))
    slow = replay("slow.jsonl")
    assert normal.count(b"\n") >= 10
    assert slow == normal


def test_replay_writes_every_rejected_record_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decode rejections and records the engine rejects as dated ahead both reach the file."""
    lines = [
        json.dumps(
            {
                "eventTime": f"2024-01-01T00:{m:02d}:00Z",
                "eventSource": "ec2.amazonaws.com",
                "eventName": "CreateTags",
                "awsRegion": "us-east-1",
                "recipientAccountId": "123456789012",
                "eventID": f"id-{m}",
            }
        )
        for m in range(30)
    ]
    ahead = json.loads(lines[0]) | {"eventTime": "2031-01-01T00:00:00Z", "eventID": "ahead"}
    lines[5:5] = [json.dumps(ahead), "not json", '{"eventTime": 17}']
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    rejected = tmp_path / "rejected.jsonl"
    assert (
        main(["replay", str(source), "--rejected", str(rejected), "-o", str(tmp_path / "o")]) == 0
    )
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    reasons = sorted(e["reason"] for e in entries)
    assert reasons == ["future_timestamp", "invalid_json", "wrong_type"]
    future = next(e for e in entries if e["reason"] == "future_timestamp")
    assert json.loads(future["record"])["eventID"] == "ahead"
    assert all(e["detail"] and e["source"] for e in entries)
    summary = capsys.readouterr().err
    assert "rejected:         3" in summary
    assert "warm-up not reached" in summary  # 30 minutes of one stream, no insight


def test_replay_reads_a_gzip_file_piped_to_stdin(data_dir: Path) -> None:
    batch = next(data_dir.rglob("*_CloudTrail_*.json.gz"))
    proc = subprocess.run(
        [sys.executable, "-m", "streams", "replay", "-"],
        input=batch.read_bytes(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    summary = proc.stderr.decode()
    assert "rejected:         0" in summary
    assert "events read:      3" in summary


def test_insights_list_finds_an_api_as_it_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    assert main(["simulate", "-o", str(source), "--days", "3", "--reads-per-minute", "0.5"]) == 0
    out = tmp_path / "insights.jsonl"
    assert main(["replay", str(source), "-o", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    from streams.sinks import InsightFileWriter

    InsightFileWriter(tmp_path / "files").write(records)
    details = records[0]["insightDetails"]
    short = f"{details['eventSource'].split('.')[0]}:{details['eventName']}"
    capsys.readouterr()
    assert main(["insights", "list", "--root", str(tmp_path / "files"), "--api", short]) == 0
    listed = capsys.readouterr()
    assert short in listed.out
    assert "0 insight records" not in listed.err
