"""House rules the import contracts (``lint-imports``) cannot see."""

from __future__ import annotations

import re
import tomllib
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


#: Modules of the library and the service over the ~400-line house limit, with the size they
#: may not grow past (issue 22 splits them; lower a bound when a module shrinks, drop it when
#: the module is under the limit).
_OVER_THE_LIMIT = {
    "insights/engine.py": 450,
    "insights/decoding.py": 405,
    "streams/worker/core.py": 417,
}
_LIMIT = 400


def test_modules_stay_under_the_size_limit_or_shrink() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in ("insights", "streams")
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    over = {name: size for name, size in sizes.items() if size > _OVER_THE_LIMIT.get(name, _LIMIT)}
    assert over == {}
    assert set(_OVER_THE_LIMIT) <= set(sizes)  # a listed module that moved: update the list


def test_the_service_may_import_no_module_of_the_library_but_its_root() -> None:
    """The import contract names the library's modules one by one: a new one must be named."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    public = next(c for c in contracts if c["name"].startswith("streams reads insights"))
    modules = {f"insights.{p.stem}" for p in (ROOT / "insights").glob("*.py")} - {
        "insights.__init__"
    }
    assert set(public["forbidden_modules"]) == modules
