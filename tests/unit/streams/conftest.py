from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.settings import WorkerSettings, load_settings


@pytest.fixture
def offline_settings(tmp_path: Path) -> Callable[..., WorkerSettings]:
    """Worker settings that reach no broker: directory checkpoints under ``tmp_path``."""

    def make(**overrides: Any) -> WorkerSettings:
        return load_settings(
            None,
            **overrides,
            bootstrap_servers="127.0.0.1:9",
            input_topics=["in"],
            output_topic="out",
            group_id="g",
            metrics_port=None,
            checkpoint_store="directory",
            state_dir=tmp_path,
        )

    return make
