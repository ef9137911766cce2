"""The optional C accelerator of the per-event loops, when it was built.

``insights/_native.c`` is compiled at install time when a C compiler is present (``setup.py``).
It handles the common case of two loops, decoding and checking complete records
(:func:`insights.events.decode_many`) and the engine's per-event routing, and hands every other
item to the pure-Python code; it also merges a closed minute's attribution values into the
sketches (:meth:`insights.attribution.AttributionTable.merge_minute`) and runs the baselines'
side of a closing step (``_closing.c``: :meth:`insights.baselines.BaselineTable.score_minutes`
and :meth:`~insights.baselines.BaselineTable.learn_minutes`) with numpy's arithmetic in numpy's
order. The pure-Python code
stays the reference: results are identical either way (``tests/unit/insights/test_native.py``
runs both). Set :data:`module` to ``None`` to run the pure-Python code.
"""

from __future__ import annotations

__all__ = ["module"]

try:
    from insights import _native
except ImportError:  # installed without a C compiler
    _native = None  # type: ignore[assignment]

#: The compiled module, or None (pure-Python loops).
module = _native
