"""Crash points for fault tests: the process kills itself (SIGKILL) at a named point.

``CTINSIGHTS_FAILPOINT=name`` kills it the first time it passes ``name``;
``CTINSIGHTS_FAILPOINT=name:n`` the n-th time. Unset (always, outside tests), a pass costs one
string compare. The worker's points: ``assigned`` (partitions restored, nothing processed),
``before_produce`` (a checkpoint with Insights written, the Insights not produced), ``revoking``
(a rebalance took partitions, before their checkpoint) and ``draining`` (stopping, before the
final checkpoints). ``ctinsights ingest``'s: ``ingest_mid_file`` (half a log file's records
sent, none acknowledged), ``ingest_before_delete`` (all acknowledged, the SQS message not
deleted) and ``ingest_deleted`` (just after a delete).
"""

from __future__ import annotations

import logging
import os
import signal

__all__ = ["failpoint"]

logger = logging.getLogger(__name__)

_NAME, _, _NTH = os.environ.get("CTINSIGHTS_FAILPOINT", "").partition(":")
_left = int(_NTH or 1)


def failpoint(name: str) -> None:
    """Kill this process here if ``CTINSIGHTS_FAILPOINT`` names this point and its turn came."""
    global _left
    if name != _NAME:
        return
    _left -= 1
    if _left == 0:
        logger.warning("failpoint %s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)
