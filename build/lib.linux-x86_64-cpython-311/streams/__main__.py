"""``python -m streams`` runs the ``ctinsights`` command line."""

from __future__ import annotations

import sys

from streams.cli import main

sys.exit(main())
