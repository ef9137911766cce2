"""Shared fixtures and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

DATA = Path(__file__).parent / "data"
SHARED = Path(os.environ.get("CTINSIGHTS_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture
def data_dir() -> Path:
    """Small fixture files (synthetic, or excerpts of MIT/Apache-licensed public logs)."""
    return DATA


@pytest.fixture(scope="session")
def cloudtrail_datasets() -> Path:
    """The shared real CloudTrail datasets (present beside the repository, in CI too)."""
    path = SHARED / "datasets" / "cloudtrail"
    assert path.is_dir(), f"shared datasets not found at {path}; set CTINSIGHTS_SHARED"
    return path
