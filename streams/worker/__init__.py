"""``ctinsights run``: the Kafka stream worker around :class:`insights.InsightEngine`.

* :mod:`~streams.worker.core`: :class:`Worker`, the poll loop, restores, checkpoints, output;
* :mod:`~streams.worker.partition`: one assigned partition and its offset invariant;
* :mod:`~streams.worker.dead_letters`: rejected input to the dead-letter topic;
* :mod:`~streams.worker.gauges`: lag, keys, watermarks and rates of the partitions.
"""

from __future__ import annotations

from streams.worker.core import EVENT_ID_HEADER, Worker
from streams.worker.partition import Partition

__all__ = ["EVENT_ID_HEADER", "Partition", "Worker"]
