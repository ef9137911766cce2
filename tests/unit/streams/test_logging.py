"""The worker's logs: kafka-python's close race is not reported as an error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kafka.net.transport import KafkaTCPTransport

from streams.runner import configure_logging


@pytest.fixture
def restored_levels() -> Iterator[None]:
    loggers = [logging.getLogger(), logging.getLogger("kafka")]
    levels = [lg.level for lg in loggers]
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def test_a_socket_read_after_close_logs_no_traceback(
    caplog: pytest.LogCaptureFixture, restored_levels: None
) -> None:
    # kafka-python's network thread reading a transport another thread has just closed
    configure_logging("INFO")
    transport = KafkaTCPTransport(None, None, host="127.0.0.1")
    with caplog.at_level(logging.DEBUG):
        _, err = transport._sock_recv()
    assert err is not None  # the library still reports the connection as gone
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("read a socket it had closed" in r.getMessage() for r in caplog.records)


def test_other_kafka_errors_are_still_logged(
    caplog: pytest.LogCaptureFixture, restored_levels: None
) -> None:
    configure_logging("INFO")
    configure_logging("INFO")  # twice, as tests and restarts do: one filter
    assert len(logging.getLogger("kafka.net.transport").filters) == 1
    try:
        raise OSError("connection reset by peer")
    except OSError:
        logging.getLogger("kafka.net.transport").exception("Error receiving network data")
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [OSError]
