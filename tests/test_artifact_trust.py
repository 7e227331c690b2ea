"""accel.load verifies before it loads: hashes, signatures, architecture and CPU features."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

import accel
from accel.errors import ArtifactError

from . import models

pytestmark = pytest.mark.e2e


def _rewrite(src, dst, *, manifest=None, library=None):
    """Copy an artifact, replacing its manifest and/or library bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "manifest.json" and manifest is not None:
                data = json.dumps(manifest).encode()
            elif item.filename.startswith("lib/") and library is not None:
                data = library(data)
            zout.writestr(item, data)
    return dst


def test_a_tampered_library_is_refused(host_artifacts, tmp_path):
    def flip(data):
        pos = len(data) // 2
        return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:]

    bad = _rewrite(host_artifacts["conv_block"], tmp_path / "bad.accel", library=flip)
    with pytest.raises(ArtifactError, match="does not match the sha256 in its manifest"):
        accel.load(bad)


def test_a_truncated_artifact_is_refused(host_artifacts, tmp_path):
    data = host_artifacts["conv_block"].read_bytes()
    bad = tmp_path / "cut.accel"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ArtifactError, match="not an accel artifact"):
        accel.load(bad)


def test_an_artifact_needing_missing_cpu_features_is_refused(host_artifacts, tmp_path):
    manifest = accel.open_artifact(host_artifacts["conv_block"]).manifest
    manifest["runtime"]["cpu_features"] = ["avx2", "imaginary_ext"]
    bad = _rewrite(host_artifacts["conv_block"], tmp_path / "f.accel", manifest=manifest)
    with pytest.raises(ArtifactError, match="CPU features this CPU lacks: imaginary_ext"):
        accel.load(bad)


def test_a_future_format_version_asks_for_a_recompile(host_artifacts, tmp_path):
    manifest = accel.open_artifact(host_artifacts["conv_block"]).manifest
    manifest["format_version"] = 99
    bad = _rewrite(host_artifacts["conv_block"], tmp_path / "v.accel", manifest=manifest)
    with pytest.raises(ArtifactError, match="format version 99.*recompile"):
        accel.load(bad)


def test_signed_artifacts_load_only_with_the_right_key(tmp_path):
    model = models.conv_block()
    path = accel.compile(model, output=tmp_path / "s.accel", signing_key=b"k1").path
    feeds = models.feeds_for(model)
    assert accel.load(path, signing_key=b"k1")(**feeds)[0].shape == (1, 5)
    with pytest.raises(ArtifactError, match="signature does not match"):
        accel.load(path, signing_key=b"other")


def test_an_unsigned_artifact_is_refused_when_a_key_is_required(host_artifacts, monkeypatch):
    monkeypatch.setenv("ACCEL_SIGNING_KEY", "service-key")
    with pytest.raises(ArtifactError, match="not signed"):
        accel.load(host_artifacts["conv_block"])


def test_an_edited_signed_manifest_is_refused(tmp_path):
    path = accel.compile(models.conv_block(), output=tmp_path / "s.accel", signing_key=b"k").path
    manifest = accel.open_artifact(path).manifest
    manifest["outputs"][0]["name"] = "renamed"
    bad = _rewrite(path, tmp_path / "e.accel", manifest=manifest)
    with pytest.raises(ArtifactError, match="signature does not match"):
        accel.load(bad, signing_key=b"k")


def test_a_copied_artifact_still_loads(host_artifacts, tmp_path):
    copy = shutil.copy(host_artifacts["conv_block"], tmp_path / "copy.accel")
    out = accel.load(copy)(np.zeros((1, 3, 16, 16), np.float32))
    assert out[0].shape == (1, 5)
