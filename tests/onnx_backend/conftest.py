"""Fixtures of the ONNX backend suite: the cached data folder and the outcome report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import cases


def pytest_addoption(parser):
    parser.addoption("--onnx-backend-report", default=None, metavar="PATH",
                     help="write each ONNX backend case's outcome to PATH (JSON)")


@pytest.fixture(scope="session", autouse=True)
def _onnx_data_home():
    """onnx's runner writes generated inputs of the real models under ONNX_HOME: cache them."""
    return cases.set_data_home()


@pytest.fixture(scope="session")
def onnx_backend_outcomes(request):
    """case name -> outcome; written to --onnx-backend-report at the end of the session."""
    outcomes: dict[str, dict] = {}
    yield outcomes
    path = request.config.getoption("--onnx-backend-report")
    if path:
        Path(path).write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
