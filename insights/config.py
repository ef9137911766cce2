"""Detection settings: one validated, immutable object, with documented sensitivity levels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SENSITIVITY_LEVELS", "EngineConfig", "InsightSelector", "Sensitivity", "Thresholds"]

InsightType = Literal["ApiCallRateInsight", "ApiErrorRateInsight"]
EventCategory = Literal["Management", "Data"]


class Sensitivity(StrEnum):
    """How readily an unusual rate becomes an insight."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The numbers a sensitivity level stands for (see docs/detection.md)."""

    start_score: float
    """Minimum score (-log10 tail probability under the baseline) to start an insight."""
    min_excess: float
    """Minimum calls (or errors) above the baseline expectation in the window."""
    peak_factor: float
    """The window count must exceed this multiple of the recent decayed peak at that scale."""


SENSITIVITY_LEVELS: dict[Sensitivity, Thresholds] = {
    Sensitivity.LOW: Thresholds(start_score=10.0, min_excess=10.0, peak_factor=1.5),
    Sensitivity.MEDIUM: Thresholds(start_score=7.0, min_excess=5.0, peak_factor=1.2),
    Sensitivity.HIGH: Thresholds(start_score=5.0, min_excess=3.0, peak_factor=1.0),
}


class InsightSelector(BaseModel):
    """AWS-style selector: which insight type analyses which event categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    insight_type: InsightType
    event_categories: tuple[EventCategory, ...] = ("Management",)
    drops: bool = False
    """Also report drops: a key with a steady rhythm that goes silent (call rate only;
    :mod:`insights.drops`)."""

    @model_validator(mode="after")
    def _drops_of_calls(self) -> InsightSelector:
        if self.drops and self.insight_type != "ApiCallRateInsight":
            raise ValueError("drops are reported for ApiCallRateInsight only")
        return self


_DEFAULT_SELECTORS = (
    InsightSelector(insight_type="ApiCallRateInsight"),
    InsightSelector(insight_type="ApiErrorRateInsight"),
)


class EngineConfig(BaseModel):
    """All settings of :class:`~insights.engine.InsightEngine`.

    Examples:
        >>> EngineConfig(sensitivity="high").thresholds.start_score
        5.0
        >>> EngineConfig(score_threshold=9).thresholds.start_score
        9.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensitivity: Sensitivity = Sensitivity.MEDIUM
    score_threshold: float | None = Field(default=None, gt=0)
    min_excess: float | None = Field(default=None, ge=1)
    peak_factor: float | None = Field(default=None, ge=0)
    selectors: tuple[InsightSelector, ...] = _DEFAULT_SELECTORS

    allowed_lateness_seconds: int = Field(default=900, ge=0, le=86_400)
    warmup_minutes: int = Field(default=1440, ge=0)
    baseline_half_life_minutes: float = Field(default=10_080.0, gt=10)
    peak_half_life_minutes: float = Field(default=4_320.0, gt=1)
    max_insight_minutes: int = Field(default=1440, ge=2)
    end_quiet_minutes: int = Field(default=3, ge=1, le=60)
    max_clock_jump_minutes: int = Field(default=360, ge=1)
    jump_confirm_events: int = Field(default=128, ge=1, le=1000)
    """Held events (distinct eventIDs) that move a stream whose own traffic has stopped."""
    jump_vouched_events: int = Field(default=3, ge=1, le=1000)
    """Held events that move a stalled stream when the other streams' clocks vouch for them."""
    jump_vouch_seconds: int = Field(default=300, ge=0)
    """How far past the held events the other streams' clock must be (or move) to vouch."""
    dedupe_window_minutes: int = Field(default=60, ge=0)
    dedupe_max_ids: int = Field(default=2_000_000, ge=0)

    @model_validator(mode="after")
    def _check_selectors(self) -> EngineConfig:
        types = [s.insight_type for s in self.selectors]
        if len(types) != len(set(types)):
            raise ValueError("each insight_type may appear in one selector only")
        return self

    @property
    def thresholds(self) -> Thresholds:
        """The sensitivity level's thresholds with any explicit overrides applied."""
        base = SENSITIVITY_LEVELS[self.sensitivity]
        return Thresholds(
            start_score=base.start_score if self.score_threshold is None else self.score_threshold,
            min_excess=base.min_excess if self.min_excess is None else self.min_excess,
            peak_factor=base.peak_factor if self.peak_factor is None else self.peak_factor,
        )

    @property
    def drops(self) -> bool:
        """Whether drops of call rates are reported (a selector opts in)."""
        return any(s.drops for s in self.selectors)

    def categories_for(self, insight_type: InsightType) -> frozenset[str]:
        """Event categories the given insight type analyses (empty: the type is off)."""
        for selector in self.selectors:
            if selector.insight_type == insight_type:
                return frozenset(selector.event_categories)
        return frozenset()
