"""Worker settings: command-line flags > ``CTINSIGHTS_*`` environment > config file > defaults.

Everything is validated before anything connects. Secrets (SASL and SSL passwords, webhook
keys) are :class:`~pydantic.SecretStr`: masked whenever settings are printed or logged.

Environment names are the field names upper-cased with the ``CTINSIGHTS_`` prefix; nested
detection settings use ``__``, e.g. ``CTINSIGHTS_DETECTION__SENSITIVITY=high``. List values
(``CTINSIGHTS_INPUT_TOPICS``) are JSON arrays.
"""

from __future__ import annotations

import json
import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from insights import EngineConfig
from streams.errors import ConfigError
from streams.sinks import WebhookSettings

__all__ = [
    "CheckpointStoreKind",
    "KeyScheme",
    "WorkerSettings",
    "load_settings",
    "read_config_file",
]


#: Case-insensitive choices of string settings (stored upper-case).
_CHOICES = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
}


class CheckpointStoreKind(StrEnum):
    """Where partition checkpoints live (see docs/operations.md)."""

    KAFKA = "kafka"
    DIRECTORY = "directory"


class KeyScheme(StrEnum):
    """Kafka message key of produced CloudTrail events (decides the partition)."""

    ACCOUNT_REGION = "account-region"
    ACCOUNT_REGION_SOURCE = "account-region-source"


class WorkerSettings(BaseSettings):
    """Settings of ``ctinsights run`` (and the Kafka part of ``produce``)."""

    model_config = SettingsConfigDict(
        env_prefix="CTINSIGHTS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    input_topics: list[str] = Field(default_factory=lambda: ["cloudtrail"], min_length=1)
    output_topic: str = "cloudtrail-insights"
    dead_letter_topic: str | None = "cloudtrail-dead-letter"
    group_id: str = "ctinsights"
    client_id: str = "ctinsights"
    create_topics: bool = True
    """Create missing output, dead-letter and state topics (input topics must exist)."""
    topic_replication_factor: int = Field(default=-1, ge=-1)
    """Replication factor of the topics the worker creates (-1: the broker's
    ``default.replication.factor``; needs Kafka 2.4 or later)."""
    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    """``min.insync.replicas`` of the topics the worker creates (None: the broker's default)."""
    state_retention_hours: float = Field(default=168.0, gt=1)
    """``retention.ms`` of the checkpoint topics (``cleanup.policy=delete``). The worker
    re-writes an idle partition's checkpoint every quarter of this, so a checkpoint outlives
    any pause of the worker shorter than it."""

    bootstrap_timeout_ms: int = Field(default=30_000, ge=1_000)
    """How long a client waits for the first broker at start-up before the worker gives up
    (exit 2: "cannot reach Kafka")."""

    # Kafka security, passed through to kafka-python
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None

    # consumption
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=2_000, ge=100)
    max_poll_records: int = Field(default=2_000, ge=1)
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    auto_offset_reset: str = "earliest"
    fetch_max_wait_ms: int = Field(default=50, ge=0, le=30_000)
    """How long the broker may hold a fetch. Brokers that hold a fetch while some of its
    partitions have no data (Tansu) slow the last busy partition to ~9k messages/s at Kafka's
    500 ms default; 50 ms gives ~38k (docs/performance.md, "One busy partition left")."""
    max_future_skew_seconds: int | None = Field(default=300, ge=0)
    """Records dated more than this ahead of the worker's clock are rejected as
    ``future_timestamp`` and dead-lettered (None: no bound; the event-time rule still holds)."""

    # state
    checkpoint_store: CheckpointStoreKind = CheckpointStoreKind.KAFKA
    state_dir: Path = Path("state")
    checkpoint_interval_seconds: float = Field(default=30.0, gt=0)
    output_delay_seconds: float = Field(default=1.0, ge=0)
    """Insights wait at most this long before their checkpoint is written and they are produced."""
    checkpoint_chunk_bytes: int = Field(default=900_000, ge=1_024, le=1_000_000)
    """Checkpoint chunk size; at most 1,000,000 so a chunk with its headers fits Kafka's
    default ``max.message.bytes`` (1,048,588)."""
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0)
    discard_incompatible_state: bool = False
    """Start a new baseline when a checkpoint was made under other detection settings."""

    # operations
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = Field(default=9108, ge=0, le=65_535)
    log_level: str = "INFO"
    stream_metrics_limit: int = Field(default=1000, ge=0)
    """At most this many (account, Region) streams get a per-stream watermark series (the
    freshest ones), so one silent stream can alert without unbounded labels."""

    detection: EngineConfig = Field(default_factory=EngineConfig)

    # sinks besides the output topic (each reads the output topic in its own group)
    webhooks: list[WebhookSettings] = []
    insight_dir: Path | None = None
    """Write Insight files in AWS's S3 layout under this directory."""
    sink_failure_fails_readiness: bool = True
    """A sink that keeps failing (it retries with backoff) makes ``/readyz`` answer 503."""
    insight_file_mode: str = Field(default="0640", pattern=r"^0?[0-7]{3}$")
    """Permissions of Insight files, octal (their directories add search permission)."""

    # the insight console (ctinsights console) over insight_dir, served by the worker
    console_port: int | None = Field(default=None, ge=0, le=65_535)
    console_host: str = "127.0.0.1"
    console_token_file: Path | None = None
    """Require ``Authorization: Bearer <the file's content>`` (or CTINSIGHTS_CONSOLE_TOKEN)."""
    console_basic_auth_file: Path | None = None
    """Require basic auth: the file holds one line ``user:password``."""
    console_url: str | None = Field(default=None, pattern=r"^https?://")
    """The console's address as people reach it: webhook payloads link each insight's page."""

    @field_validator("log_level", "security_protocol")
    @classmethod
    def _one_of(cls, value: str, info: ValidationInfo) -> str:
        allowed = _CHOICES[info.field_name or ""]
        if value.upper() not in allowed:
            raise ValueError(f"{info.field_name} must be one of {', '.join(allowed)}")
        return value.upper()

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, servers: str) -> str:
        entries = [entry.strip() for entry in servers.split(",")]
        for entry in entries:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65_536:
                raise ValueError(f"bootstrap_servers: {entry!r} is not host:port")
        return ",".join(entries)

    @field_validator("input_topics")
    @classmethod
    def _distinct_topics(cls, topics: list[str]) -> list[str]:
        if len(set(topics)) != len(topics):
            raise ValueError("input topics must be distinct")
        return topics

    @model_validator(mode="after")
    def _check(self) -> WorkerSettings:
        outputs = {self.output_topic, self.dead_letter_topic}
        if outputs & set(self.input_topics):
            raise ValueError("output and dead-letter topics must differ from the input topics")
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        if self.topic_replication_factor == 0:
            raise ValueError("topic_replication_factor must be -1 (broker default) or at least 1")
        if self.auto_offset_reset not in ("earliest", "latest"):
            raise ValueError("auto_offset_reset must be earliest or latest")
        if self.console_port is not None and self.insight_dir is None:
            raise ValueError("console_port needs insight_dir (the console shows its files)")
        return self

    def linked_webhooks(self) -> list[WebhookSettings]:
        """The webhooks, each with ``console_url`` (its own, else the worker's)."""
        return [
            h if h.console_url or not self.console_url
            else h.model_copy(update={"console_url": self.console_url})
            for h in self.webhooks
        ]  # fmt: skip

    def kafka_options(self) -> dict[str, Any]:
        """Connection and security options shared by every kafka-python client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
        }
        optional = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_plain_username,
            "sasl_plain_password": _reveal(self.sasl_plain_password),
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_password": _reveal(self.ssl_password),
        }
        options.update({k: v for k, v in optional.items() if v is not None})
        return options

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data, secrets masked (``check-config``); webhook URLs
        keep their scheme and host only."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for hook, shown in zip(self.webhooks, data["webhooks"], strict=True):
            shown["url"] = hook.masked_url()
        return data

    def path_problems(self) -> list[str]:
        """What the worker would fail to write or read, found without connecting."""
        problems: list[str] = []
        writable = [("insight_dir", self.insight_dir)]
        if self.checkpoint_store is CheckpointStoreKind.DIRECTORY:
            writable.append(("state_dir", self.state_dir))
        for hook in self.webhooks:
            if hook.dead_letter_path is not None:
                writable.append(
                    (f"webhook {hook.name} dead_letter_path", hook.dead_letter_path.parent)
                )
        for name, directory in writable:
            if directory is not None and (problem := _unwritable(directory)):
                problems.append(f"{name} {directory}: {problem}")
        readable = [
            ("ssl_cafile", self.ssl_cafile),
            ("ssl_certfile", self.ssl_certfile),
            ("ssl_keyfile", self.ssl_keyfile),
        ] + [(f"webhook {h.name} secret_file", h.secret_file) for h in self.webhooks]
        for name, file in readable:
            if file is not None and not os.access(file, os.R_OK):
                problems.append(f"{name} {file}: not a readable file")
        return problems

    def topic_configs(self, state: bool) -> dict[str, str]:
        """Configs of a topic the worker creates (``state``: a checkpoint topic)."""
        configs = {"cleanup.policy": "delete"}
        if state:
            configs["retention.ms"] = str(int(self.state_retention_hours * 3_600_000))
        if self.topic_min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.topic_min_insync_replicas)
        return configs

    def state_topic(self, input_topic: str) -> str:
        """The checkpoint topic of one input topic (one partition per input partition)."""
        return f"{self.group_id}.{input_topic}.checkpoints"


def _unwritable(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (it may not exist yet), or None."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            return "no existing parent"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _errors(exc: ValidationError) -> str:
    """One line per problem: ``field: message``."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)


def read_config_file(path: str) -> dict[str, Any]:
    """Settings from a TOML or JSON file (``ConfigError`` if missing or unreadable)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = file.read_text(encoding="utf-8")
        loaded: dict[str, Any] = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    return loaded


def load_settings(config_file: str | None = None, **flags: Any) -> WorkerSettings:
    """Settings from flags (``None`` = not given), the environment and an optional file."""
    file_values = read_config_file(config_file) if config_file else {}
    given = {k: v for k, v in flags.items() if v is not None}

    class _Layered(WorkerSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            from_file = InitSettingsSource(settings_cls, init_kwargs=file_values)
            return (init_settings, env_settings, from_file)

    try:
        layered = _Layered(**given)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_errors(exc)}") from exc
    except SettingsError as exc:  # an environment variable that is not valid JSON
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(
            f"invalid settings: {exc}{cause} (lists and objects are JSON, e.g. "
            f"CTINSIGHTS_INPUT_TOPICS='[\"cloudtrail\"]')"
        ) from exc
    return WorkerSettings.model_construct(**dict(layered))
