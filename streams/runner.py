"""Process-level running of the worker: logging, metrics server, signals, exit codes."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from streams.console import Console, ConsoleServer, console_credentials, serve
from streams.errors import ConfigError, StreamsError
from streams.metrics import MetricsServer
from streams.settings import WorkerSettings
from streams.sinks.runner import SinkRunner, start_sinks
from streams.worker import Worker

__all__ = ["ClosedSocketRace", "configure_logging", "install_signal_handlers", "run_worker"]

logger = logging.getLogger(__name__)


class ClosedSocketRace(logging.Filter):
    """Drop kafka-python's traceback for a socket read after another thread closed it.

    kafka-python 3.0's network thread can wake on a socket that ``close()`` has just set to
    ``None`` from the caller's thread (``transport._close`` takes no lock); it then logs
    ``AttributeError: 'NoneType' object has no attribute 'recv'`` at ERROR with a traceback.
    The connection was being closed on purpose, so the record is logged at DEBUG instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, AttributeError) and str(exc).startswith("'NoneType' object"):
            logger.debug("kafka-python read a socket it had closed: %s", exc)
            return False
        return True


_CLOSED_SOCKET_RACE = ClosedSocketRace()


def configure_logging(level: str) -> None:
    """The worker's log levels; kafka-python speaks only of errors, minus its close race."""
    logging.getLogger().setLevel(level.upper())
    logging.getLogger("kafka").setLevel(logging.ERROR)
    logging.getLogger("kafka.net.transport").addFilter(_CLOSED_SOCKET_RACE)  # once: same object


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop``; a second signal exits at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        if stop.is_set():
            raise SystemExit(128 + signum)
        logger.info("signal %d: draining, checkpointing and closing", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker(settings: WorkerSettings) -> int:
    """Run the worker in this process until a signal; return the exit code."""
    configure_logging(settings.log_level)
    worker = Worker(settings)
    server = None
    if settings.metrics_port is not None:
        server = MetricsServer(worker.metrics.registry, worker.health)
        server.start(settings.metrics_host, settings.metrics_port)
    install_signal_handlers(worker.stop_event)
    worker.health.update(sinks_gate_readiness=settings.sink_failure_fails_readiness)
    sinks: list[SinkRunner] = []
    console = start_console(settings)

    def connected() -> None:
        sinks.extend(start_sinks(settings, worker.metrics, worker.health, worker.stop_event))

    worker.on_connected = connected
    try:
        worker.run()
    except ConfigError:
        raise  # an operator error: the CLI prints it and exits 2
    except StreamsError as exc:
        logger.error("worker stopped: %s", exc)
        return 1
    finally:
        worker.stop_event.set()
        for sink in sinks:
            sink.thread.join(settings.shutdown_timeout_seconds)
        if server is not None:
            server.stop()
        if console is not None:
            console.close()
    return 0


def start_console(settings: WorkerSettings) -> ConsoleServer | None:
    """The insight console over ``insight_dir`` when ``console_port`` is set."""
    if settings.console_port is None or settings.insight_dir is None:
        return None
    token, basic = console_credentials(
        None if settings.console_token_file is None else str(settings.console_token_file),
        None if settings.console_basic_auth_file is None else str(settings.console_basic_auth_file),
    )
    app = Console(settings.insight_dir, token=token, basic=basic)
    try:
        console = serve(app, settings.console_host, settings.console_port)
    except OSError as exc:
        raise ConfigError(f"console_port {settings.console_port}: {exc}") from exc
    logger.info("insight console on %s/", console.url)
    return console
