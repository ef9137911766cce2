"""Exit statuses of ``ctinsights``."""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_USAGE = 2
