"""``ctinsights run``: the Kafka stream worker around :class:`insights.InsightEngine`.

* :mod:`~streams.worker.core`: :class:`Worker`, the poll loop, restores and checkpoints;
* :mod:`~streams.worker.clients`: the Kafka clients and the topics the worker needs;
* :mod:`~streams.worker.broker`: calls to the broker retried with backoff, and reported;
* :mod:`~streams.worker.output`: Insight records to the output topic, and their re-delivery;
* :mod:`~streams.worker.partition`: one assigned partition, its offset invariant, stalls;
* :mod:`~streams.worker.dead_letters`: rejected input to the dead-letter topic;
* :mod:`~streams.worker.gauges`: lag, keys, watermarks and rates of the partitions.
"""

from __future__ import annotations

from streams.worker.core import EVENT_ID_HEADER, Worker
from streams.worker.partition import Partition

__all__ = ["EVENT_ID_HEADER", "Partition", "Worker"]
