"""The lab: what evaluates, demonstrates and tests ctinsights, and what the service never needs.

* :mod:`streams.lab.simulate`: a labelled simulated CloudTrail stream (``ctinsights simulate``);
* :mod:`streams.lab.evaluation`: scoring Insight records against those labels;
* :mod:`streams.lab.nab`: the Numenta Anomaly Benchmark's scoring, for the continuous series;
* :mod:`streams.lab.broker`: the local Kafka-protocol broker (Tansu) for tests and the demo;
* :mod:`streams.lab.demo`: ``ctinsights demo``, the whole local pipeline.

An import contract (``lint-imports``) keeps the service's modules from importing any of it.
"""
