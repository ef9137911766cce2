"""Insight files in AWS's S3 layout, and reading them back (``ctinsights insights list``)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.files import write_atomically

__all__ = [
    "CONTEXT_FOLDER",
    "InsightFileWriter",
    "context_path",
    "read_context",
    "read_insight_files",
]

#: The folder beside ``AWSLogs`` that holds each insight's context (:mod:`insights.context`):
#: ``<root>/ctinsights-context/<first 2 characters of the sharedEventID>/<sharedEventID>.json.gz``.
CONTEXT_FOLDER = "ctinsights-context"

logger = logging.getLogger(__name__)


class InsightFileWriter:
    """Insight records in AWS's S3 layout, gzip JSON ``{"Records": [...]}``, written atomically.

    ``<root>/AWSLogs/<account>/CloudTrail-Insight/<region>/<yyyy>/<mm>/<dd>/
    <account>_CloudTrail-Insight_<region>_<yyyymmddThhmmZ>_<id>.json.gz``; the id is derived from
    the records' eventIDs, so writing the same batch again replaces the same file.
    """

    def __init__(self, root: Path, mode: int = 0o640) -> None:
        self.root = root
        self.mode = mode

    def write(self, records: list[dict[str, Any]]) -> list[Path]:
        """Write ``records`` grouped by account, Region and the UTC day of each record's own
        ``eventTime`` (as AWS folders them); return the files written."""
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for record in records:
            day = _event_time(record).strftime("%Y/%m/%d")
            key = (record["recipientAccountId"], record["awsRegion"], day)
            groups.setdefault(key, []).append(record)
        return [self._write_group(a, r, d, items) for (a, r, d), items in sorted(groups.items())]

    def _write_group(
        self, account: str, region: str, day: str, records: list[dict[str, Any]]
    ) -> Path:
        when = max(_event_time(r) for r in records)
        digest = hashlib.sha256("".join(sorted(r["eventID"] for r in records)).encode())
        name = (
            f"{account}_CloudTrail-Insight_{region}_{when:%Y%m%dT%H%MZ}_"
            f"{digest.hexdigest()[:16]}.json.gz"
        )
        path = self.root / "AWSLogs" / account / "CloudTrail-Insight" / region / day / name
        body = gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)
        write_atomically(path, body, mode=self.mode)
        return path

    def write_contexts(self, contexts: dict[str, bytes]) -> list[Path]:
        """Write each insight's context (JSON bytes by sharedEventID), replacing the last."""
        paths = []
        for sid, context in sorted(contexts.items()):
            path = context_path(self.root, sid)
            body = gzip.compress(context, mtime=0)
            write_atomically(path, body, mode=self.mode)
            paths.append(path)
        return paths


def context_path(root: Path, shared_event_id: str) -> Path:
    """Where the context of the insight ``shared_event_id`` is written (``ValueError`` for an
    id that is not a UUID: it is part of a path)."""
    sid = str(uuid.UUID(shared_event_id))
    return root / CONTEXT_FOLDER / sid[:2] / f"{sid}.json.gz"


def read_context(root: Path, shared_event_id: str) -> dict[str, Any] | None:
    """The context written for ``shared_event_id``, or None (none written, or unreadable)."""
    try:
        path = context_path(root, shared_event_id)
        doc = json.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("unreadable context of %s: %s", shared_event_id, exc)
        return None
    return doc if isinstance(doc, dict) else None


def _event_time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).astimezone(UTC)


def read_insight_files(root: Path) -> list[dict[str, Any]]:
    """Every Insight record under ``root``'s ``AWSLogs/*/CloudTrail-Insight`` trees (AWS's or
    ours), de-duplicated by eventID, oldest first."""
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("**/CloudTrail-Insight/**/*.json.gz")):
        try:
            records = json.loads(gzip.decompress(path.read_bytes())).get("Records", [])
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("skipping unreadable Insight file %s: %s", path, exc)
            continue
        for record in records:
            seen.setdefault(record["eventID"], record)
    return sorted(seen.values(), key=lambda r: (r["eventTime"], r["eventID"]))
