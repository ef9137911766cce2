"""Build step for the optional C accelerator; all other metadata is in pyproject.toml.

``insights/_native.c`` holds the per-event loops of replay and the worker, ``_closing.c`` the
baselines' closing step, ``_sketch.c`` the attribution sketches, ``_stats.c`` the tail scores,
``_step.c`` a whole closing step when no insight of it is open. It is optional: without a
C compiler the install still succeeds and the pure-Python code runs, with the same results
(tests compare both) and slower replay (README "Performance").
"""

import sys

from setuptools import Extension, setup

# the closing step must round like numpy: no fused multiply-add contraction
FLAGS = [] if sys.platform == "win32" else ["-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "insights._native",
            [
                f"insights/{name}.c"
                for name in (
                    "_native",
                    "_closing",
                    "_sketch",
                    "_stats",
                    "_step",
                )
            ],
            depends=["insights/_native.h"],
            extra_compile_args=FLAGS,
            optional=True,
        )
    ]
)
