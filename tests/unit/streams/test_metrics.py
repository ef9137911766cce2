"""What the worker's registry says about the build."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from insights import native
from streams.metrics import WorkerMetrics


@pytest.mark.parametrize("built", [True, False])
def test_build_info_names_the_version_and_the_accelerator(
    built: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not built:
        monkeypatch.setattr(native, "module", None)
    text = generate_latest(WorkerMetrics().registry).decode()
    line = next(x for x in text.splitlines() if x.startswith("ctinsights_build_info{"))
    assert f'accelerator="{"c" if built else "none"}"' in line
    assert 'version="0.1.0"' in line
    assert line.endswith(" 1.0")
