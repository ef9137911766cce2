"""House rules the import contracts (``lint-imports``) cannot see."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_detection_library_never_reads_the_wall_clock() -> None:
    """Time enters through events: no ``now()``, ``today()`` or ``time()`` in ``insights/``."""
    clock = re.compile(
        r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time|time\.monotonic)\("
    )
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "insights").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if clock.search(line)
    ]
    assert found == []
