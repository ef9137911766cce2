"""Routing: which keys (baseline rows) an event counts for.

A key is (account, Region, event source, event name, insight type, error code); each has a row in
the baseline and attribution tables. Events of one shape (stream, source, name, error code and
the fields that decide the category) always count for the same rows, so the rows are cached per
shape (:attr:`Router.routes`, which the C scan reads too).
"""

from __future__ import annotations

from typing import Any, Final

from insights.attribution import AttributionTable
from insights.baselines import BaselineTable
from insights.config import EngineConfig
from insights.counters import EngineStats
from insights.events import CloudTrailEvent, RejectReason, is_read_only
from insights.records import InsightKey
from insights.windows import StreamState

__all__ = ["CALL", "ERROR", "Router"]

CALL: Final = "ApiCallRateInsight"
ERROR: Final = "ApiErrorRateInsight"
_API_EVENT_TYPES = frozenset({None, "AwsApiCall"})
#: Bound of the cache of event shapes -> keys (cleared when full).
_MAX_ROUTES = 1 << 20

KeyTuple = tuple[str, str, str, str, str, str]
RouteKey = tuple[object, ...]


class Router:
    """The keys seen so far, each key's row and stream, and the cache of event shapes."""

    def __init__(
        self,
        config: EngineConfig,
        stats: EngineStats,
        table: BaselineTable,
        attrs: AttributionTable,
    ) -> None:
        self.stats = stats
        self._table = table
        self._attrs = attrs
        self._call_categories = config.categories_for(CALL)
        self._error_categories = config.categories_for(ERROR)
        self.rows: dict[KeyTuple, int] = {}
        #: the key of each row, in the order first seen
        self.keys: list[InsightKey] = []
        #: the stream of each row
        self.row_stream: list[StreamState] = []
        #: event shape (the stream object first) -> its rows
        self.routes: dict[RouteKey, tuple[int, ...]] = {}

    def route(
        self, stream: StreamState, event: CloudTrailEvent, route: RouteKey
    ) -> tuple[int, ...] | None:
        """The rows an event of this shape counts for, cached per shape; None if invalid."""
        if not event.event_source or not event.event_name:
            self.stats.rejected[RejectReason.MISSING_FIELD.value] += 1
            return None
        rows = tuple(self._keys_of(event, stream))
        if len(self.routes) >= _MAX_ROUTES:
            self.routes.clear()
        self.routes[route] = rows
        return rows

    def _keys_of(self, event: CloudTrailEvent, stream: StreamState) -> list[int]:
        if event.event_type not in _API_EVENT_TYPES:
            return []
        management = event.management_event
        if management is None:
            management = event.event_category != "Data"
        category = "Management" if management else "Data"
        rows: list[int] = []
        if category in self._call_categories and not is_read_only(event):
            rows.append(self._row(stream, event, CALL, ""))
        error = event.error_code
        if error and category in self._error_categories:
            rows.append(self._row(stream, event, ERROR, error))
        return rows

    def _row(self, stream: StreamState, event: CloudTrailEvent, kind: str, error: str) -> int:
        assert event.event_source is not None
        assert event.event_name is not None
        key = (stream.account, stream.region, event.event_source, event.event_name, kind, error)
        row = self.rows.get(key)
        if row is None:
            row = self._new_row(key, stream)
        return row

    def _new_row(self, key: KeyTuple, stream: StreamState) -> int:
        row = self._table.add_row()
        self._attrs.ensure(row + 1)
        self.rows[key] = row
        if key[4] == CALL:
            insight_key = InsightKey(key[0], key[1], key[2], key[3], CALL, key[5])
        else:
            insight_key = InsightKey(key[0], key[1], key[2], key[3], ERROR, key[5])
        self.keys.append(insight_key)
        self.row_stream.append(stream)
        stream.rows.append(row)
        return row

    # ------------------------------------------------------------------ snapshots
    def to_state(self) -> list[list[str]]:
        """The keys as snapshot data (rows are their positions)."""
        return [list(k.as_tuple()) for k in self.keys]

    def load_state(self, keys: list[Any], streams: list[StreamState]) -> None:
        """Take the keys :meth:`to_state` saved and the loaded streams that own their rows."""
        self.keys = [InsightKey(*k) for k in keys]
        self.rows = {k.as_tuple(): i for i, k in enumerate(self.keys)}
        self.row_stream = [streams[0]] * len(self.keys) if streams else []
        for s in streams:
            for row in s.rows:
                self.row_stream[row] = s
        self.routes = {}
