"""The console's web app (WSGI) and its server.

Read-only: GET and HEAD only. Routes: ``/`` (list), ``/insights/<sharedEventID>`` (an insight's
page), ``/api/insights`` and ``/api/insights/<sharedEventID>`` (the JSON behind them),
``/healthz``. Paths never reach the file system: an insight is looked up by its id among the
records read, and its context by :func:`streams.sinks.files.context_path`, which accepts UUIDs
only. With a bearer token or basic-auth credentials set, every route but ``/healthz`` needs them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from streams.console import pages
from streams.console.store import PAGE_SIZE, Filters, InsightStore
from streams.errors import ConfigError

__all__ = ["Console", "ConsoleServer", "console_credentials", "serve"]

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(pages.PAGE_SCRIPT.encode()).digest()).decode()
_HEADERS = [
    # only the page's own script runs: a value that got past escaping could not execute
    (
        "Content-Security-Policy",
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]


class Console:
    """The WSGI application over an Insight directory."""

    def __init__(
        self,
        root: Path,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        refresh_seconds: float = 2.0,
    ) -> None:
        self.store = InsightStore(root, refresh_seconds)
        self.token = token
        self.basic = basic

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        if method not in ("GET", "HEAD"):
            return self._send(start_response, "405 Method Not Allowed", "read-only", path)
        if path != "/healthz" and not self._authorized(environ.get("HTTP_AUTHORIZATION", "")):
            headers = [("WWW-Authenticate", 'Basic realm="ctinsights"')] if self.basic else []
            return self._send(
                start_response, "401 Unauthorized", "credentials needed", path, headers
            )
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            status, body, kind = self._route(path, query)
        except ValueError as exc:
            return self._send(start_response, "400 Bad Request", str(exc), path)
        if status != "200 OK":
            return self._send(start_response, status, body, path)
        data = body.encode()
        start_response(
            status, [("Content-Type", kind), ("Content-Length", str(len(data))), *_HEADERS]
        )
        return [b"" if method == "HEAD" else data]

    def _authorized(self, header: str) -> bool:
        if self.token is None and self.basic is None:
            return True
        scheme, _, value = header.partition(" ")
        if self.token is not None and scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if self.basic is not None and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except ValueError:
                return False
            wanted_user, wanted_password = self.basic
            return hmac.compare_digest(user.encode(), wanted_user.encode()) & hmac.compare_digest(
                password.encode(), wanted_password.encode()
            )
        return False

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[str, str, str]:
        html, js = "text/html; charset=utf-8", "application/json"
        if path == "/healthz":
            return "200 OK", "ok\n", "text/plain"
        if path in ("/", "/api/insights"):
            filters = Filters.from_query(query)
            matched = [i for i in self.store.insights() if filters.matches(i)]
            if path == "/":
                return "200 OK", pages.list_page(matched, filters), html
            first = (filters.page - 1) * PAGE_SIZE
            doc = {
                "total": len(matched),
                "page": filters.page,
                "pageSize": PAGE_SIZE,
                "counts": dict(Counter(str(i.details.get("insightType")) for i in matched)),
                "items": [i.summary() for i in matched[first : first + PAGE_SIZE]],
            }
            return "200 OK", json.dumps(doc), js
        for prefix, api in (("/insights/", False), ("/api/insights/", True)):
            if path.startswith(prefix):
                sid = path[len(prefix) :]
                insight = self.store.get(sid)
                if insight is None:
                    return "404 Not Found", f"no insight {sid}", html
                context = self.store.context(sid)
                if api:
                    records = [r for r in (insight.start, insight.end) if r is not None]
                    doc = {"insight": insight.summary(), "records": records, "context": context}
                    return "200 OK", json.dumps(doc), js
                return "200 OK", pages.insight_page(insight, context), html
        return "404 Not Found", f"no page {path}", html

    def _send(
        self,
        start_response: StartResponse,
        status: str,
        message: str,
        path: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        if path.startswith("/api/"):
            body, kind = json.dumps({"error": message}), "application/json"
        else:
            body, kind = pages.error_page(status, message), "text/html; charset=utf-8"
        data = body.encode()
        headers = [("Content-Type", kind), ("Content-Length", str(len(data)))]
        start_response(status, headers + _HEADERS + (extra or []))
        return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("console: " + format, *args)


class ConsoleServer:
    """A console served from a background thread (:func:`serve`)."""

    def __init__(self, app: Console, host: str, port: int) -> None:
        self._server = make_server(
            host, port, app, server_class=_Server, handler_class=_QuietHandler
        )
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="console", daemon=True
        )

    def start(self) -> ConsoleServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def serve(app: Console, host: str = "127.0.0.1", port: int = 8321) -> ConsoleServer:
    """Start serving ``app`` in a background thread; port 0 takes a free port."""
    return ConsoleServer(app, host, port).start()


def console_credentials(
    token_file: str | None, basic_auth_file: str | None
) -> tuple[str | None, tuple[str, str] | None]:
    """The bearer token (``token_file`` or ``CTINSIGHTS_CONSOLE_TOKEN``) and the basic-auth
    ``user:password`` (``basic_auth_file``) the console asks for, if any."""
    token = os.environ.get("CTINSIGHTS_CONSOLE_TOKEN") or None
    basic = None
    try:
        if token_file:
            token = Path(token_file).read_text().strip()
        if basic_auth_file:
            user, sep, password = Path(basic_auth_file).read_text().strip().partition(":")
            if not sep or not user or not password:
                raise ConfigError(f"{basic_auth_file}: expected one line user:password")
            basic = (user, password)
    except OSError as exc:
        raise ConfigError(f"cannot read console credentials: {exc}") from exc
    if token == "":
        raise ConfigError("the console's bearer token is empty")
    return token, basic
