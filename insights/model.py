"""The model's constants, in one place.

The Python code reads them from :data:`MODEL`, and the C accelerator receives the same values
from it at import (:mod:`insights.native`), so changing the model is a Python edit: e.g.
``winsor_sigma=4.0`` learns suspicious minutes capped at 4 sigma instead of 3, on both paths
(docs/detection.md, "Changing the model"). The shape (``scales``, ``n_slots``) sizes the
baseline arrays; the C code is compiled for the default shape and stays unused (pure Python,
with a warning) under any other.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

__all__ = ["MODEL", "ModelParams"]


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Every constant of the baselines and the tail scores (thresholds are in EngineConfig)."""

    scales: tuple[int, ...] = (1, 10, 60)
    """Window scales in minutes (tumbling buckets aligned to the hour)."""
    n_slots: int = 48
    """Seasonal slots: UTC hour of day x weekday/weekend."""
    prior_count: float = 0.5
    """Prior pseudo-count of the overall rate (keeps a never-seen key's rate above 0) ..."""
    prior_minutes: float = 60.0
    """... over this many prior minutes."""
    slot_prior_minutes: float = 120.0
    """Minutes of weight the overall rate carries inside a seasonal slot (shrinkage)."""
    max_phi: float = 1e4
    """Upper bound of the dispersion (variance over mean)."""
    winsor_sigma: float = 3.0
    """Suspicious minutes are learned capped at the baseline's ``winsor_sigma`` bound ..."""
    suspect_score: float = 4.0
    """... when their minute-scale score reaches this (1 in 10,000) ..."""
    suspect_weight: float = 0.25
    """... the excess over the cap counting this much, so a burst's first minute cannot hide
    its second."""
    poisson_phi: float = 1.0 + 1e-6
    """A dispersion at or below this is scored as Poisson."""

    def native_arguments(self) -> tuple[float, ...]:
        """The scalar constants in the order ``insights._native.set_model`` takes them."""
        return tuple(float(v) for v in astuple(self)[2:])


#: The model every engine runs.
MODEL = ModelParams()
