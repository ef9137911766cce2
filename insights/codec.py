"""numpy arrays in snapshots: raw little-endian bytes with their dtype and shape, never pickle."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pack_array", "unpack_array"]


def pack_array(a: np.ndarray) -> dict[str, Any]:
    """A msgpack-able form of ``a`` (a C-contiguous copy's bytes)."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def unpack_array(d: dict[str, Any]) -> np.ndarray:
    """The writable array :func:`pack_array` packed.

    Examples:
        >>> unpack_array(pack_array(np.arange(6).reshape(2, 3))).tolist()
        [[0, 1, 2], [3, 4, 5]]
    """
    return np.frombuffer(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()
