"""Build step for the optional C accelerator; all other metadata is in pyproject.toml.

The C sources are in ``insights/csrc/`` (its README says what each file computes and which
Python it mirrors). It is optional: without a C compiler the install still succeeds and the
pure-Python code runs, with the same results (tests compare both) and slower replay.
"""

import sys

from setuptools import Extension, setup

try:  # numpy's headers declare the ufunc object whose double loops the tail scores call
    import numpy

    INCLUDE = [numpy.get_include()]
except ImportError:  # no numpy at build time: the optional build fails, pure Python runs
    INCLUDE = []

# the closing step must round like numpy: no fused multiply-add contraction
FLAGS = [] if sys.platform == "win32" else ["-ffp-contract=off"]
SOURCES = ("native", "closing", "sketch", "stats", "step")

setup(
    ext_modules=[
        Extension(
            "insights._native",
            [f"insights/csrc/{name}.c" for name in SOURCES],
            depends=["insights/csrc/native.h"],
            include_dirs=INCLUDE,
            extra_compile_args=FLAGS,
            optional=True,
        )
    ]
)
