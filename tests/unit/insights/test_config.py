from __future__ import annotations

import pytest
from pydantic import ValidationError

from insights import SENSITIVITY_LEVELS, EngineConfig, InsightSelector, Sensitivity


def test_levels_are_ordered() -> None:
    low, mid, high = (SENSITIVITY_LEVELS[s] for s in Sensitivity)
    assert low.start_score > mid.start_score > high.start_score
    assert low.min_excess > mid.min_excess > high.min_excess


def test_overrides_win() -> None:
    t = EngineConfig(sensitivity=Sensitivity.LOW, min_excess=2).thresholds
    assert (t.start_score, t.min_excess) == (SENSITIVITY_LEVELS[Sensitivity.LOW].start_score, 2)


def test_invalid_settings() -> None:
    with pytest.raises(ValidationError):
        EngineConfig(allowed_lateness_seconds=-1)
    with pytest.raises(ValidationError):
        EngineConfig(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        EngineConfig(selectors=(InsightSelector(insight_type="ApiCallRateInsight"),) * 2)
