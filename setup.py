"""Build step for the optional C accelerator; all other metadata is in pyproject.toml.

``insights/_native.c`` holds the per-event loops of replay and the worker. It is optional:
without a C compiler the install still succeeds and the pure-Python loops run, with the same
results (tests compare both) and about 1.5x slower replay (README "Performance").
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("insights._native", ["insights/_native.c"], optional=True)])
