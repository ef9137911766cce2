"""The closing step: each closed stream-minute scored, learned and decided, many at once.

When a stream's clock closes minutes (:class:`insights.clocks.StreamClocks`), they wait in
``due`` until the next drain, which takes one minute of every due stream per step and runs the
step vectorized over the keys active in it: expectation and tail scores
(:mod:`insights.baselines`, :mod:`insights.stats`), the Start rule
(:func:`insights.starts.start_decisions`), learning, the attribution sketches, and the open
insights' End rule (:class:`insights.detectors.OpenInsights`). With the C accelerator built,
a step without an open or starting insight runs in C (``close_step``, ``next_batch``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from insights.attribution import AttributionTable, Interner
from insights.baselines import SCALES, BaselineTable, Expectation, ScoredMinutes
from insights.clocks import StreamClocks
from insights.config import EngineConfig
from insights.context import ContextBook
from insights.counters import EngineStats
from insights.detectors import OpenInsights, Seen
from insights.drops import DropWatch
from insights.exposure import RESCALE_EXPONENT
from insights.familiarity import ActorReview
from insights.records import InsightRecord
from insights.routing import Router
from insights.starts import start_decisions
from insights.stats import nb_tail_score
from insights.windows import MinuteBuffer, StreamState

__all__ = ["MinuteCloser"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: What an open insight observes of a step the C accelerator learned:
#: (index in the step, row, count, mu, dispersion per scale).
Observation = tuple[int, int, int, float, tuple[float, float, float]]

#: Minutes of closed per-minute detail kept for attributing an insight's first minutes.
_LOOKBACK = max(SCALES) + 1
#: Empty minutes are accounted in pieces of at most this many half-lives (keeps weights finite).
_GAP_PIECE_HALF_LIVES = 20


class MinuteCloser:
    """Scores, learns and decides the closed minutes of the due streams (:meth:`drain`)."""

    def __init__(
        self,
        config: EngineConfig,
        stats: EngineStats,
        table: BaselineTable,
        attrs: AttributionTable,
        names: Interner,
        router: Router,
        clocks: StreamClocks,
        insights: OpenInsights,
    ) -> None:
        self.config = config
        self.stats = stats
        self._thresholds = config.thresholds  # the config is frozen
        #: the rhythms of the call-rate keys and their drops, when a selector asks for them
        self.drops = DropWatch.for_config(config)
        #: who made the minutes that could start or that a rare key learns in full
        self._actors = ActorReview(config.thresholds, attrs, names, router, insights.reported)
        self._gap_piece = int(_GAP_PIECE_HALF_LIVES * config.baseline_half_life_minutes)
        self._table = table
        #: each insight's counts and expectations around it (what the console draws)
        self.contexts = ContextBook(table)
        #: the engine's one choice of C kernels (or None), made when it was constructed
        self._kernels = table.kernels
        self._attrs = attrs
        self._names = names
        self._router = router
        self._clocks = clocks
        self._insights = insights
        #: what the C closing step makes the arrays of a possible Start with
        self._step_tools = (
            np.empty,
            np.dtype(np.int64),
            np.dtype(np.float64),
            np.dtype(np.bool_),
        )

    def drain(self) -> list[InsightRecord]:
        """Score and learn every closed minute not yet processed, all streams in lock-step."""
        out: list[InsightRecord] = []
        # each due stream's pending minutes, newest first, taken when it first has a gap to skip
        # (no minute is added while draining)
        ahead: dict[tuple[str, str], list[int]] = {}
        fast = self._kernels
        due = self._clocks.due
        while due:
            batch: list[tuple[StreamState, int, MinuteBuffer]]
            if fast is not None:  # the same round in C
                batch = fast.next_batch(
                    due, ahead, self._gap_piece, RESCALE_EXPONENT, self._rebase_if_needed
                )
            else:
                batch = []
                for key, stream in list(due.items()):
                    minute = self._next_to_close(stream, ahead, key)
                    if minute is None:
                        del due[key]
                    else:
                        batch.append((stream, minute, stream.pending.pop(minute, {})))
            if batch:
                out.extend(self._close_batch(batch))
                if self.contexts.ending:  # most steps: no insight waits for its tail
                    self.contexts.due([(s, m) for s, m, _ in batch])
                if self.drops is not None:
                    out.extend(self.stats.count(self.drops.watch(batch, self._router.keys)))
        return out

    def _next_to_close(
        self, stream: StreamState, ahead: dict[tuple[str, str], list[int]], key: tuple[str, str]
    ) -> int | None:
        """The next minute of ``stream`` that needs scoring; empty minutes are skipped cheaply.

        ``ahead`` holds the drain's sorted pending minutes of its streams (newest first)."""
        minute = stream.next_close
        target = stream.closed_until
        if minute < target and not stream.open_rows and minute not in stream.pending:
            pending = ahead.get(key)
            if pending is None:
                pending = ahead[key] = sorted(stream.pending, reverse=True)
            while pending and pending[-1] < minute:  # closed since (or behind next_close)
                pending.pop()
            gap_end = min(pending[-1], target) if pending else target
            self._skip_empty(stream, minute, gap_end)
            minute = stream.next_close = gap_end
        if minute >= target:
            return None
        stream.next_close = minute + 1
        return minute

    def _skip_empty(self, stream: StreamState, start: int, end: int) -> None:
        piece = self._gap_piece
        while start < end:
            stop = min(end, start + piece)
            self._rebase_if_needed(stream, stop)
            stream.exposure.add_minutes(start, stop)
            start = stop

    def _rebase_if_needed(self, stream: StreamState, minute: int) -> None:
        if not stream.exposure.needs_rescale(minute):
            return
        factor = stream.exposure.rebase(minute)
        rows = np.asarray(stream.rows, dtype=np.int64)
        self._table.rescale(rows, factor)
        self._attrs.rescale(rows, factor)

    def _close_batch(
        self, batch: list[tuple[StreamState, int, MinuteBuffer]]
    ) -> list[InsightRecord]:
        """Score, learn and decide one minute of each stream in ``batch``, vectorized over rows."""
        fast = self._kernels
        if fast is not None:
            done = fast.close_step(
                batch,
                self._table,
                self._attrs.ids,
                self._attrs.weights,
                self._names.id,
                self._thresholds.min_excess,
                self._thresholds.start_score,
                self._actors.sparse,
                RESCALE_EXPONENT,
                _LOOKBACK,
                self._step_tools,
            )
            if done is False:  # the whole step ran in C: nothing started, nothing open
                return []
            if isinstance(done, list):  # learned in C; the open insights observe here
                return self._observe_step(batch, done)
            if isinstance(done, tuple):  # scored in C: a Start is possible
                rows, counts, item, minute, planes, scratch, needed, scores = done
                scored = ScoredMinutes.from_planes(minute, planes, scratch, len(batch), needed)
                spans = None  # the rows of each stream-minute, where insights are open
                if any(stream.open_rows for stream, _, _ in batch):
                    spans = np.searchsorted(item, np.arange(len(batch) + 1)).tolist()
                return self._decide(batch, rows, counts, item, spans, scored, scores)
        row_list: list[int] = []
        count_list: list[int] = []
        item_list: list[int] = []
        bounds: list[int] = [0]
        for index, (stream, minute, buffer) in enumerate(batch):
            if stream.exposure.needs_rescale(minute + 1):
                self._rebase_if_needed(stream, minute + 1)
            active: dict[int, int] = dict.fromkeys(stream.open_rows, 0) if stream.open_rows else {}
            for (row, _p, _a, _e), count in buffer.items():
                active[row] = active.get(row, 0) + count
            for row in sorted(active):
                row_list.append(row)
                count_list.append(active[row])
            item_list.extend([index] * len(active))
            bounds.append(len(row_list))
        rows = np.array(row_list, dtype=np.int64)
        counts = np.array(count_list, dtype=np.float64)
        item = np.array(item_list, dtype=np.int64)
        scored = self._table.score_minutes(
            rows,
            counts,
            item,
            [s.exposure for s, _, _ in batch],
            [m for _, m, _ in batch],
            self._thresholds.min_excess,
        )
        scores = nb_tail_score(
            scored.window, scored.lam, scored.phi, where=scored.needed, kernels=self._kernels
        )
        return self._decide(batch, rows, counts, item, bounds, scored, scores)

    def _decide(
        self,
        batch: list[tuple[StreamState, int, MinuteBuffer]],
        rows: npt.NDArray[np.int64],
        counts: npt.NDArray[np.float64],
        item: npt.NDArray[np.int64],
        bounds: list[int] | None,
        scored: ScoredMinutes,
        scores: npt.NDArray[np.float64],
    ) -> list[InsightRecord]:
        """The rest of a step once it is scored: Starts, learning, sketches, open insights.

        ``bounds[i]:bounds[i + 1]`` are the rows of ``batch[i]``; None when no stream of the
        batch has open insights (the only reader)."""
        table = self._table
        thresholds = self._thresholds
        expected = scored.expected
        window, lam = scored.window, scored.lam
        open_rows = self._insights.open
        is_open = (
            np.array([r in open_rows for r in rows.tolist()], dtype=bool)
            if open_rows
            else np.zeros(len(rows), dtype=bool)
        )
        # most minutes have no row that could start: then the peaks are not needed
        decision = None
        learn_scores = scores
        review = self._actors.review(batch, rows, item, counts, scores, window, lam, is_open)
        if review is not None:
            learn_scores = review.learn_scores
            if np.count_nonzero(review.could_start):
                first = np.array([s.first_minute for s, _, _ in batch], dtype=np.int64)[item]
                warmed = scored.minute - first >= self.config.warmup_minutes
                decision = start_decisions(
                    scores,
                    window,
                    lam,
                    table.peaks(rows, scored.minute),
                    review.could_start & ~is_open & warmed,
                    thresholds,
                    dispersion=scored.phi,
                    novel=review.novel,
                    sparse=self._actors.sparse,
                )
        guarded = is_open if decision is None else is_open | decision.mask
        table.learn_minutes(scored, rows, counts, learn_scores, guarded)
        learned = ~guarded
        self._attrs.merge_buffers(
            [buffer for _, _, buffer in batch],
            dict(zip(rows[learned].tolist(), scored.decay[learned].tolist(), strict=True)),
            self._names.id,
        )
        records: list[InsightRecord] = []
        # the rows that start an insight, per stream-minute of the batch
        starts: dict[int, list[tuple[int, int, float, int]]] = {}
        if decision is not None:
            for i in np.flatnonzero(decision.mask).tolist():
                starts.setdefault(int(item[i]), []).append(
                    (
                        i,
                        int(decision.scale_index[i]),
                        float(decision.score[i]),
                        int(decision.new_actor_calls[i]),
                    )
                )
        for index, (stream, minute, buffer) in enumerate(batch):
            if stream.open_rows:  # before this minute's Starts: they are not open in it yet
                assert bounds is not None
                lo, hi = bounds[index], bounds[index + 1]
                records.extend(
                    self._observe_open(stream, minute, buffer, rows, lo, hi, counts, expected)
                )
            for i, scale_index, score, new_actor_calls in starts.get(index, ()):
                records.append(
                    self._start(
                        stream,
                        int(rows[i]),
                        minute,
                        buffer,
                        (scale_index, score, new_actor_calls),
                        float(expected.mu[i]),
                        float(expected.mean_rate[i]),
                    )
                )
            stream.remember(minute, buffer, _LOOKBACK)
        return records

    def _start(
        self,
        stream: StreamState,
        row: int,
        minute: int,
        buffer: MinuteBuffer,
        decided: tuple[int, float, int],
        mu: float,
        mean_rate: float,
    ) -> InsightRecord:
        """Open an insight: ``decided`` is the winning scale, score and new actors' calls."""
        attributions = self._attrs.baseline(row, stream.exposure.total, self._names)
        record = self._insights.start(
            stream,
            self._router.keys[row],
            row,
            minute,
            buffer,
            decided,
            mu,
            mean_rate,
            attributions,
        )
        self.stats.insights_started[record.key.insight_type] += 1
        self.contexts.started(stream, row, record, minute, buffer)
        return record

    def _observe_open(
        self,
        stream: StreamState,
        minute: int,
        buffer: MinuteBuffer,
        rows: IntArray,
        lo: int,
        hi: int,
        counts: FloatArray,
        expected: Expectation,
    ) -> list[InsightRecord]:
        """Feed the minute to ``stream``'s open insights (its rows are ``rows[lo:hi]``)."""
        if not stream.open_rows:
            return []
        index = {r: lo + i for i, r in enumerate(rows[lo:hi].tolist())}
        seen = []
        for row in sorted(stream.open_rows):
            i = index[row]
            phi = expected.phi[i]
            seen.append(
                (
                    row,
                    int(counts[i]),
                    float(expected.mu[i]),
                    (float(phi[0]), float(phi[1]), float(phi[2])),
                )
            )
        return self._observe(stream, minute, buffer, seen)

    def _observe_step(
        self, batch: list[tuple[StreamState, int, MinuteBuffer]], observed: list[Observation]
    ) -> list[InsightRecord]:
        """Feed a step the C accelerator learned to its open insights: ``observed`` holds
        (item, row, count, mu, phi per scale) of every open row, in the step's order."""
        records: list[InsightRecord] = []
        start = 0
        while start < len(observed):
            index = observed[start][0]
            end = start
            while end < len(observed) and observed[end][0] == index:
                end += 1
            stream, minute, buffer = batch[index]
            seen = [(row, count, mu, phi) for _, row, count, mu, phi in observed[start:end]]
            records.extend(self._observe(stream, minute, buffer, seen))
            start = end
        return records

    def _observe(
        self, stream: StreamState, minute: int, buffer: MinuteBuffer, seen: list[Seen]
    ) -> list[InsightRecord]:
        self.contexts.observed(stream, minute, seen)
        records = self._insights.observe(stream, minute, buffer, seen)
        self.contexts.ended(stream, records)
        return self.stats.count(records)

    def finish(self, lasts: list[tuple[StreamState, int]]) -> list[InsightRecord]:
        """End every open insight and drop at the end of a finite input (``lasts``: each
        stream and the minute after its last, from ``StreamClocks.close_all``)."""
        out: list[InsightRecord] = []
        for stream, last in lasts:
            open_ = [self._insights.open[row] for row in sorted(stream.open_rows)]
            ends = [self._insights.end(stream, i, last - 1, 0.0, "end_of_input") for i in open_]
            self.contexts.ended(stream, ends)
            out += ends
        self.contexts.finish(lasts)
        if self.drops is not None:
            out += self.drops.end_all({(s.account, s.region): last for s, last in lasts})
        return self.stats.count(out)
