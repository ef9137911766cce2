"""Who drives a burst: the calls made by principals new to a key and to its stream.

The baseline's attribution sketches (:class:`insights.attribution.AttributionTable`) remember,
per key, the principals and user agents that call it, with forward-decayed counts. A clump of a
rarely called write API by the infrastructure-as-code role that always makes such changes is
ordinary; the same clump by a principal the account-Region has never seen is what an attacker's
burst looks like. :func:`novel_counts` counts those calls: a call is *novel* when its principal
has fewer than :data:`FAMILIAR_CALLS` decayed calls on the key and either the principal or the
user agent has fewer than that on the whole stream. The last hour's calls are not history (they
may be the burst itself, already learned), and a value that took a slot of a full sketch is
credited only what it added beyond the lightest slot (the space-saving error bound), so a new
principal that pushed a regular one out does not inherit the regular's history. A stream younger
than :data:`ACQUAINTED_MINUTES` has not met its usual actors: nobody is new to it yet.

:class:`ActorReview` is what the closing step asks of it, only on *rare* keys (a bucket
expecting fewer calls than :func:`insights.starts.sparse_expectation`), where sketches of five
values can tell who is new: which rows could start (:mod:`insights.starts`), with their novel
calls; and which suspicious minutes of a rare key its usual actors made. Those are learned in
full, not winsorized: clumps are how such a key is called, and the count model must learn them
to stop flagging them (capping them at the key's recent clumps was measured: the peaks decay
faster than such keys clump, and the false insights came back). New actors' minutes and a new
error code's first ones (a key with no history) are still learned winsorized.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from insights.attribution import AttributionTable, Interner
from insights.baselines import SCALES
from insights.config import Thresholds
from insights.model import MODEL
from insights.routing import ERROR, Router
from insights.starts import sparse_expectation
from insights.windows import MinuteBuffer, StreamState

__all__ = ["ACQUAINTED_MINUTES", "FAMILIAR_CALLS", "ActorReview", "Review", "novel_counts"]

#: Decayed calls a principal or user agent needs (before the last hour) to be familiar.
FAMILIAR_CALLS = 2.0
#: History a stream needs (effective minutes) before anyone in it can be new to it.
ACQUAINTED_MINUTES = 2 * 1440.0

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Batch = list[tuple[StreamState, int, MinuteBuffer]]


def novel_counts(
    stream: StreamState,
    row: int,
    minute: int,
    buffer: MinuteBuffer,
    attrs: AttributionTable,
    names: Interner,
    reported: tuple[str, ...] = (),
) -> FloatArray:
    """Per scale, ``row``'s calls in the bucket so far (up to ``minute``, whose calls are in
    ``buffer``) by principals new to the key and, with their user agent, to the stream; then
    the key's own history: its decayed calls before the last hour, at least. The principals
    of the key's last insight (``reported``) are not new to it."""
    lookback = max(SCALES)
    exposure = stream.exposure
    now = exposure.effective_minutes(minute) / exposure.total if exposure.total > 0 else 0.0
    recent, key_recent = _recent_calls(stream, row, minute - lookback, minute)
    on_key = _lower_bounds(attrs, np.array([row]), 0, now, names)
    stream_rows = np.asarray(stream.rows, dtype=np.int64)
    on_stream = [_lower_bounds(attrs, stream_rows, attr, now, names) for attr in range(2)]

    def novel(principal: str, agent: str) -> bool:
        if principal in reported:
            return False
        if on_key.get(principal, 0.0) - key_recent[principal] >= FAMILIAR_CALLS:
            return False
        return any(
            on_stream[attr].get(value, 0.0) - recent[attr][value] < FAMILIAR_CALLS
            for attr, value in ((0, principal), (1, agent))
        )

    out = np.zeros(len(SCALES) + 1, dtype=np.float64)
    out[-1] = sum(on_key.values()) - sum(key_recent.values())
    detail = stream.row_minutes(row, minute - lookback, minute, (minute, buffer))
    for m, items in detail.items():
        calls = sum(count for principal, agent, _, count in items if novel(principal, agent))
        for index, scale in enumerate(SCALES):
            if m >= minute - minute % scale:
                out[index] += calls
    return out


def _recent_calls(
    stream: StreamState, row: int, first: int, minute: int
) -> tuple[list[Counter[str]], Counter[str]]:
    """The stream's closed calls in ``[first, minute)`` per principal and per user agent, and
    ``row``'s per principal (learned already, unless an insight held them)."""
    recent: list[Counter[str]] = [Counter(), Counter()]
    on_row: Counter[str] = Counter()
    for m, minute_buffer in stream.recent.items():
        if first <= m < minute:
            for (r, principal, agent, _error), count in minute_buffer.items():
                recent[0][principal] += count
                recent[1][agent] += count
                if r == row:
                    on_row[principal] += count
    return recent, on_row


def _lower_bounds(
    attrs: AttributionTable, rows: IntArray, attr: int, now: float, names: Interner
) -> dict[str, float]:
    """Per value held in the sketches of ``rows`` for ``attr``: its decayed calls as of now,
    at least (summed over the rows). A value that took a slot of a full sketch inherited up to
    the lightest slot's weight (the space-saving error bound), which is taken off."""
    ids = attrs.ids[rows, attr]
    weights = attrs.weights[rows, attr].astype(np.float64)
    full = (ids >= 0).all(axis=1)
    floor = np.where(full, weights.min(axis=1), 0.0)
    lower = np.maximum(weights - floor[:, None], 0.0) * now
    out: dict[str, float] = {}
    held = ids >= 0
    for ident, weight in zip(ids[held].tolist(), lower[held].tolist(), strict=True):
        value = names.value(ident)
        out[value] = out.get(value, 0.0) + weight
    return out


@dataclass(frozen=True, slots=True)
class Review:
    """What :meth:`ActorReview.review` found of a closing step's rows."""

    could_start: BoolArray
    """Rows at some scale ``min_excess`` above the expectation, and scoring ``start_score`` or
    on a rare key (where new actors' calls alone could start an insight)."""
    novel: FloatArray
    """Per row and scale, the calls of new actors (0 where not reviewed)."""
    learn_scores: FloatArray
    """The scores to learn the step with: a rare key's suspicious minute made by its usual
    actors has its minute-scale score cleared, so it is learned in full."""


class ActorReview:
    """The closing step's questions about actors, on rare keys (see the module's text)."""

    def __init__(
        self,
        thresholds: Thresholds,
        attrs: AttributionTable,
        names: Interner,
        router: Router,
        reported: dict[int, tuple[str, ...]],
    ) -> None:
        self.thresholds = thresholds
        #: below this expectation in a bucket, ``min_excess`` calls by new actors alone are a
        #: Start: such rows always come back from the C step for review
        self.sparse = sparse_expectation(thresholds)
        self._attrs = attrs
        self._names = names
        self._router = router
        self._reported = reported

    def review(
        self,
        batch: Batch,
        rows: IntArray,
        item: IntArray,
        counts: FloatArray,
        scores: FloatArray,
        window: FloatArray,
        lam: FloatArray,
        is_open: BoolArray,
    ) -> Review | None:
        """Review a scored step (``rows[i]`` of ``batch[item[i]]``); None if no row needs it."""
        rare = lam < self.sparse
        could_start = np.asarray(
            (
                (window - np.floor(lam) >= self.thresholds.min_excess)
                & ((scores >= self.thresholds.start_score) | rare)
            ).any(axis=1),
            dtype=bool,
        )
        suspect = rare[:, 0] & (scores[:, 0] >= MODEL.suspect_score)
        # novel calls count only where the key is rare: busy keys' candidates are not reviewed
        which = (could_start | suspect) & ~is_open & rare.any(axis=1)
        if not np.count_nonzero(could_start | suspect):
            return None
        found = np.zeros((rows.shape[0], len(SCALES) + 1), dtype=np.float64)
        for i in np.flatnonzero(which).tolist():
            stream, minute, buffer = batch[int(item[i])]
            if stream.exposure.effective_minutes(minute) >= ACQUAINTED_MINUTES:
                row = int(rows[i])
                reported = self._reported.get(row, ())
                found[i] = novel_counts(
                    stream, row, minute, buffer, self._attrs, self._names, reported
                )
        novel, history = found[:, :-1], found[:, -1]
        usual = suspect & ~is_open & (2 * novel[:, 0] < counts)
        for i in np.flatnonzero(usual).tolist():
            if (
                self._router.keys[int(rows[i])].insight_type == ERROR
                and history[i] < FAMILIAR_CALLS
            ):
                usual[i] = False
        learn_scores = scores
        if np.count_nonzero(usual):
            learn_scores = scores.copy()
            learn_scores[usual, 0] = 0.0
        return Review(could_start=could_start, novel=novel, learn_scores=learn_scores)
