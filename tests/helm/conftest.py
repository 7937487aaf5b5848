"""The chart's tests: `helm_chart` importable, and the rendered manifests of each values set."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from helm_chart import VARIANTS, render  # noqa: E402


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = render(VARIANTS[request.param]())
    return manifests
