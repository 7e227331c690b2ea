"""Shared fixtures: a private cache dir, tiny models on disk, and compiled host artifacts."""

from __future__ import annotations

import shutil

import onnx
import pytest

from . import models


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test writes its cache under a temp folder, never the user's."""
    monkeypatch.setenv("ACCEL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """Each test ONNX model saved as <name>.onnx."""
    folder = tmp_path_factory.mktemp("models")
    for name, build in models.ALL_ONNX.items():
        onnx.save(build(), folder / f"{name}.onnx")
    return folder


@pytest.fixture(scope="session")
def host_artifacts(model_dir, tmp_path_factory):
    """Each test model compiled once for this host: name -> artifact path."""
    import accel

    folder = tmp_path_factory.mktemp("artifacts")
    return {name: accel.compile(model_dir / f"{name}.onnx", "host",
                                output=folder / f"{name}.accel").path
            for name in models.ALL_ONNX}


def require_tool(name: str) -> str:
    """Skip the test (printing why) when a command-line tool is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"'{name}' is not installed (.ci/run installs it)")
    return path
