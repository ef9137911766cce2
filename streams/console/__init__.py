"""The insight console: a web page per insight with its rate against the baseline.

``ctinsights console --root DIR`` (or the worker's ``console_port``) serves the insights of an
Insight directory: the list (:func:`streams.console.pages.list_page`), each insight's page with
its rate chart, statistics, attributions and records, and the JSON API behind both
(:class:`streams.console.app.Console`).
"""

from __future__ import annotations

from streams.console.app import Console, ConsoleServer, console_credentials, serve

__all__ = ["Console", "ConsoleServer", "console_credentials", "serve"]
