"""ctinsights deployment layer: files, Kafka, sinks, metrics, the worker and the CLI."""

from __future__ import annotations
