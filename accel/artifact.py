"""The artifact file: one zip holding manifest.json and the compiled library; reads without TVM."""

from __future__ import annotations

import dataclasses
import hmac
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from .errors import ArtifactError
from .fsutil import atomic_path, canonical_json, sha256_bytes
from .signature import ManifestIO

FORMAT = "accel-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


@dataclasses.dataclass(frozen=True)
class Artifact(ManifestIO):
    """A compiled model on disk: its path and its manifest."""

    path: Path
    manifest: dict[str, Any]
    #: True when ``accel.compile`` took it from the compile cache.
    cached: bool = False

    @property
    def target_name(self) -> str:
        """The named target it was compiled for."""
        return self.manifest["target"]["name"]

    def read_member(self, name: str) -> bytes:
        """Read one file stored in the artifact."""
        with _open_zip(self.path) as zf:
            try:
                return zf.read(name)
            except KeyError:
                raise ArtifactError(f"{self.path}: missing member '{name}'") from None

    def read_members(self) -> dict[str, bytes]:
        """Every stored file but the manifest and its signature, by name."""
        with _open_zip(self.path) as zf:
            return {n: zf.read(n) for n in zf.namelist() if n not in (MANIFEST, SIGNATURE)}

    def library_bytes(self) -> bytes:
        """The compiled library, verified against the manifest's sha256."""
        lib = self.manifest["library"]
        data = self.read_member(lib["path"])
        if sha256_bytes(data) != lib["sha256"]:
            raise ArtifactError(f"{self.path}: library '{lib['path']}' does not match the "
                                "sha256 in its manifest (tampered with or corrupt); refusing "
                                "to load it")
        return data


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArtifactError(f"{path}: not an accel artifact ({exc})") from None


def open_artifact(path: str | os.PathLike, *, signing_key: bytes | None = None) -> Artifact:
    """Read and validate an artifact's manifest (and its signature when a key is given)."""
    path = Path(path)
    with _open_zip(path) as zf:
        try:
            raw = zf.read(MANIFEST)
        except KeyError:
            raise ArtifactError(f"{path}: not an accel artifact (no {MANIFEST})") from None
        signature = zf.read(SIGNATURE) if SIGNATURE in zf.namelist() else None
    manifest = _parse_manifest(path, raw)
    if signing_key is not None:
        _verify_signature(path, raw, signature, signing_key)
    return Artifact(path, manifest)


def _parse_manifest(path: Path, raw: bytes) -> dict:
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ArtifactError(f"{path}: corrupt manifest (not JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an accel artifact (manifest format)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format version {manifest.get('format_version')} "
                            f"is not supported by this accel (reads {FORMAT_VERSION}); recompile")
    return manifest


def sign(raw_manifest: bytes, key: bytes) -> bytes:
    """HMAC-SHA256 of the manifest bytes (which pin the library's sha256)."""
    return hmac.new(key, raw_manifest, "sha256").hexdigest().encode()


def _verify_signature(path: Path, raw: bytes, signature: bytes | None, key: bytes) -> None:
    if signature is None:
        raise ArtifactError(f"{path}: artifact is not signed, and a signing key is required")
    if not hmac.compare_digest(signature, sign(raw, key)):
        raise ArtifactError(f"{path}: signature does not match the signing key; refusing it")


def write_artifact(path: str | os.PathLike, manifest: dict, members: dict[str, bytes], *,
                   signing_key: bytes | None = None) -> Artifact:
    """Write manifest and members into one zip, atomically (temp file, then rename).

    Binaries (``lib/``) are stored uncompressed: compiled code and weights barely deflate, and
    loading and copying an artifact should not pay for it.
    """
    raw = canonical_json(manifest).encode()
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, raw)
        if signing_key is not None:
            zf.writestr(SIGNATURE, sign(raw, signing_key))
        for name, data in members.items():
            stored = zipfile.ZIP_STORED if name.startswith("lib/") else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=stored)
    return Artifact(Path(path), manifest)


def copy_artifact(artifact: Artifact, path: str | os.PathLike, *,
                  signing_key: bytes | None = None) -> Artifact:
    """Copy an artifact file atomically, adding (or replacing) its signature when given a key."""
    with atomic_path(path) as tmp:
        shutil.copyfile(artifact.path, tmp)
        if signing_key is not None:
            with zipfile.ZipFile(artifact.path) as src:
                raw, signed = src.read(MANIFEST), SIGNATURE in src.namelist()
            if signed:  # a zip cannot drop a member in place: rewrite it
                write_artifact(tmp, artifact.manifest, artifact.read_members(),
                               signing_key=signing_key)
            else:
                with zipfile.ZipFile(tmp, "a") as zf:
                    zf.writestr(SIGNATURE, sign(raw, signing_key))
    return Artifact(Path(path), artifact.manifest)
