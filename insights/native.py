"""The optional C accelerator, when it was built.

``insights/csrc/`` is compiled at install time when a C compiler is present (``setup.py``); its
README says what each file computes and which Python it mirrors: the engine's per-event loop,
the baselines' closing step, the tail scores, the attribution sketches and a whole closing step.
JSON is read by msgspec alone (:mod:`insights.decoding`): a C reader measured within 0.75-1.33x of
it end to end (``benchmarks/cli_bench.py``) and was removed.

The pure-Python code stays the reference: results are the same bits either way (numpy's
arithmetic in numpy's order, numpy's and scipy's own ufunc loops for every transcendental
function, called directly by C on contiguous doubles;
``tests/unit/insights/test_native.py`` runs both). :data:`module` is what is available; an
engine takes it (or not: ``InsightEngine(accelerated=False)``) when it is constructed and hands
it to its parts, which never look here again. Start the process with
``CTINSIGHTS_PURE_PYTHON=1`` to make nothing available (``make test-pure`` runs the unit and
property suites that way).
"""

from __future__ import annotations

import logging
import os

__all__ = ["ABI", "module"]

#: The calling convention this code expects of the compiled module (``NATIVE_ABI``).
ABI = 13

#: The C code calls numpy's ufunc loops by their internals, so it runs only with the
#: (major, minor) releases it was checked against (``make test`` on the lock file and
#: ``make test-latest`` on the newest allowed ones); any other runs the pure-Python code. Add a
#: release here after the native tests pass with it.
CHECKED_WITH: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "numpy": ((2, 0), (2, 4)),
}


def _release(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``2.4.6`` or ``0.23.0rc1``."""
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in version.split(".")[:2]]
    return (parts[0], parts[1] if len(parts) > 1 else 0)


def unchecked_dependencies(versions: dict[str, str]) -> list[str]:
    """``name version`` of each dependency outside :data:`CHECKED_WITH`'s range.

    Examples:
        >>> unchecked_dependencies({"numpy": "2.4.6"})
        []
        >>> unchecked_dependencies({"numpy": "1.26.4"})
        ['numpy 1.26.4']
    """
    out = []
    for name, version in versions.items():
        low, high = CHECKED_WITH[name]
        if not low <= _release(version) <= high:
            out.append(f"{name} {version}")
    return out


try:
    from insights import _native
except ImportError:  # installed without a C compiler
    _native = None  # type: ignore[assignment]

if os.environ.get("CTINSIGHTS_PURE_PYTHON") == "1":
    _native = None  # type: ignore[assignment]

if _native is not None and getattr(_native, "ABI", None) != ABI:
    # a module left by an earlier build (an editable install whose rebuild failed): its
    # functions take other arguments, so the pure-Python code runs instead
    logging.getLogger(__name__).warning(
        "insights._native is from another version (ABI %s, expected %s): not used; "
        "reinstall to rebuild it",
        getattr(_native, "ABI", None),
        ABI,
    )
    _native = None  # type: ignore[assignment]

if _native is not None:
    import numpy as np

    _unchecked = unchecked_dependencies({"numpy": np.__version__})
    if _unchecked:
        logging.getLogger(__name__).warning(
            "insights._native was not checked with %s: not used (pure Python, same results, "
            "slower); see insights.native.CHECKED_WITH",
            ", ".join(_unchecked),
        )
        _native = None  # type: ignore[assignment]

if _native is not None:
    # the closing step calls numpy's and scipy's ufunc loops directly (the same code the ufuncs
    # run, without their per-call cost); a numpy whose ufuncs it cannot read runs pure Python
    import numpy as np
    from scipy import special

    if not _native.set_loops(np.exp2, special.gammainc, special.betainc, np.log10):
        logging.getLogger(__name__).warning(
            "insights._native cannot find the double loops of numpy %s's ufuncs: not used",
            np.__version__,
        )
        _native = None  # type: ignore[assignment]

if _native is not None:
    # the model's constants come from Python; the C code is compiled for one shape
    from insights.model import MODEL

    if (MODEL.scales, MODEL.n_slots) != _native.SHAPE:
        logging.getLogger(__name__).warning(
            "insights._native is compiled for scales %s and %s slots, the model has %s and %s: "
            "not used",
            *_native.SHAPE,
            MODEL.scales,
            MODEL.n_slots,
        )
        _native = None  # type: ignore[assignment]
    else:
        _native.set_model(*MODEL.native_arguments())

#: The compiled module, or None (the pure-Python code).
module = _native
