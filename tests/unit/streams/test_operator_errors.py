"""Operator mistakes give one clear message and exit status 2, never a traceback.

Each case runs ``ctinsights`` as a process, as an operator would, with its environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = [
    # (name, arguments, environment, what stderr must say)
    (
        "a list variable that is not JSON",
        ["check-config"],
        {"CTINSIGHTS_INPUT_TOPICS": "cloudtrail"},
        "input_topics",
    ),
    (
        "webhooks that are not JSON",
        ["check-config"],
        {"CTINSIGHTS_WEBHOOKS": "not json"},
        "webhooks",
    ),
    ("an unknown log level", ["check-config"], {"CTINSIGHTS_LOG_LEVEL": "LOUD"}, "log_level"),
    (
        "an unknown security protocol",
        ["check-config"],
        {"CTINSIGHTS_SECURITY_PROTOCOL": "FOO"},
        "security_protocol",
    ),
    (
        "an empty bootstrap list",
        ["check-config", "--bootstrap-servers", ""],
        {},
        "bootstrap_servers",
    ),
    (
        "a bootstrap entry without a port",
        ["check-config", "--bootstrap-servers", "kafka"],
        {},
        "host:port",
    ),
    (
        "an Insight directory under a file",
        ["check-config"],
        {"CTINSIGHTS_INSIGHT_DIR": "{tmp}/a-file/insights"},
        "insight_dir",
    ),
    (
        "a dead-letter file under a file",
        ["check-config"],
        {
            "CTINSIGHTS_WEBHOOKS": '[{"name": "x", "url": "https://h.example/s", '
            '"dead_letter_path": "{tmp}/a-file/d.jsonl"}]'
        },
        "dead_letter_path",
    ),
    (
        "replay output in a missing directory",
        ["replay", "{tmp}/in.jsonl", "-o", "/nonexistent/dir/x.jsonl"],
        {},
        "cannot write Insight records to /nonexistent/dir/x.jsonl",
    ),
    (
        "rejected records in a missing directory",
        ["replay", "{tmp}/in.jsonl", "--rejected", "/nonexistent/dir/r.jsonl"],
        {},
        "cannot write rejected records to",
    ),
    (
        "a broker nobody listens on",
        ["run", "--bootstrap-servers", "127.0.0.1:1", "--metrics-port", "0"],
        {"CTINSIGHTS_BOOTSTRAP_TIMEOUT_MS": "1500"},
        "cannot reach Kafka at 127.0.0.1:1",
    ),
]


def _ctinsights(
    arguments: list[str], environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``ctinsights ARGUMENTS`` as a process, with only ``environment`` of the CTINSIGHTS_ ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTINSIGHTS_")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "streams", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_an_operator_error_is_a_message_and_exit_2(
    arguments: list[str], environment: dict[str, str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "in.jsonl").write_text("")
    fill = {"{tmp}": str(tmp_path)}

    def filled(text: str) -> str:
        for placeholder, value in fill.items():
            text = text.replace(placeholder, value)
        return text

    done = _ctinsights(
        [filled(a) for a in arguments], {k: filled(v) for k, v in environment.items()}
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert message in done.stderr


def test_check_config_masks_webhook_urls_like_passwords(tmp_path: Path) -> None:
    """A Slack incoming-webhook URL is a credential: only its scheme and host are shown."""
    url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
    webhooks = f'[{{"name": "slack", "url": "{url}", "format": "slack"}}]'
    done = _ctinsights(["check-config"], {"CTINSIGHTS_WEBHOOKS": webhooks})
    assert done.returncode == 0, done.stderr
    assert "XXXXXXXX" not in done.stdout + done.stderr
    assert '"url": "https://hooks.slack.com/**********"' in done.stdout
