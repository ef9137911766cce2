"""``ctinsights console``: the insight console over an Insight directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streams.cli.status import EXIT_OK
from streams.console import Console, ConsoleServer, console_credentials
from streams.errors import ConfigError, SourceError

__all__ = ["add_console_parser", "cmd_console"]

logger = logging.getLogger("ctinsights")


def add_console_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = sub.add_parser("console", help="web pages of the insights in an Insight directory")
    console.add_argument("--root", required=True, help="the Insight directory (AWSLogs/...)")
    console.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    console.add_argument("--port", type=int, default=8321)
    console.add_argument("--token-file", help="require 'Authorization: Bearer <its content>'")
    console.add_argument("--basic-auth-file", help="require basic auth, one line user:password")
    console.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    """Serve the console until interrupted."""
    root = Path(args.root)
    if not root.is_dir():
        raise SourceError(f"no such directory: {args.root}")
    token, basic = console_credentials(args.token_file, args.basic_auth_file)
    try:
        server = ConsoleServer(Console(root, token=token, basic=basic), args.host, args.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    print(f"ctinsights console on {server.url}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return EXIT_OK
