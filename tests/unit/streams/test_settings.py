"""Worker settings: the topics the worker creates, and values refused before anything connects."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.settings import load_settings
from streams.topics import missing_topics


def test_created_topics_are_never_compacted_and_take_their_configs_from_settings() -> None:
    settings = load_settings(
        None,
        input_topics=["a", "b"],
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
        state_retention_hours=48,
    )
    created = missing_topics(
        settings, existing={"a", "b", "cloudtrail-insights"}, partitions_of={"a": 4, "b": 2}
    )
    by_name = {t.name: t for t in created}
    assert set(by_name) == {
        "cloudtrail-dead-letter",
        "ctinsights.a.checkpoints",
        "ctinsights.b.checkpoints",
    }
    assert by_name["ctinsights.a.checkpoints"].num_partitions == 4
    assert by_name["ctinsights.b.checkpoints"].num_partitions == 2
    for topic in created:
        assert topic.replication_factor == 3
        assert topic.topic_configs["cleanup.policy"] == "delete"
        assert topic.topic_configs["min.insync.replicas"] == "2"
    assert by_name["ctinsights.a.checkpoints"].topic_configs["retention.ms"] == str(48 * 3_600_000)
    # defaults: the broker's replication factor and min.insync.replicas
    default = missing_topics(
        load_settings(None), existing={"cloudtrail"}, partitions_of={"cloudtrail": 1}
    )
    assert {t.replication_factor for t in default} == {-1}
    assert all("min.insync.replicas" not in t.topic_configs for t in default)
    # the directory store needs no state topic
    directory = load_settings(None, checkpoint_store="directory")
    assert [t.name for t in missing_topics(directory, {"cloudtrail"}, {"cloudtrail": 1})] == [
        "cloudtrail-insights",
        "cloudtrail-dead-letter",
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"topic_replication_factor": 0}, "topic_replication_factor"),
        ({"checkpoint_chunk_bytes": 2_000_000}, "checkpoint_chunk_bytes"),
        ({"state_retention_hours": 0.5}, "state_retention_hours"),
    ],
)
def test_values_a_cluster_would_refuse_are_refused_first(
    flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, **flags)


def test_the_console_needs_the_insight_directory_it_shows(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="console_port needs insight_dir"):
        load_settings(None, console_port=8321)
    with pytest.raises(ConfigError, match="console_url"):
        load_settings(None, console_url="insights.example.com")


def test_console_url_reaches_every_webhook_that_has_none_of_its_own() -> None:
    hooks = [
        {"name": "slack", "url": "https://hooks.example.com/a", "format": "slack"},
        {"name": "siem", "url": "https://siem.example.com/", "console_url": "https://other/"},
    ]
    settings = load_settings(None, console_url="https://insights.example.com", webhooks=hooks)
    assert [h.console_url for h in settings.linked_webhooks()] == [
        "https://insights.example.com",
        "https://other/",
    ]
