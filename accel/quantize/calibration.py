"""Calibration data: a folder of .npz input sets or an iterable of dicts, checked and digested."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFileError, UsageError


def load_calibration(source, inputs) -> list[dict[str, np.ndarray]]:
    """Every input set in ``source``, checked against the model's inputs (TensorSpecs)."""
    return [_checked(s, inputs, i) for i, s in enumerate(read_sets(source))]


def read_sets(source) -> list[dict[str, np.ndarray]]:
    """The input sets in ``source``, unchecked; a list given back as it is.

    ``source`` is a folder of ``.npz`` files (one input set per file, arrays named as the
    model's inputs), one ``.npz`` file, or an iterable of ``{input name: array}`` mappings.
    """
    if isinstance(source, list) and all(isinstance(s, dict) for s in source) and source:
        return source
    if isinstance(source, str | os.PathLike):
        sets = list(_from_path(Path(source)))
    elif isinstance(source, Mapping):
        sets = [dict(source)]
    elif isinstance(source, Iterable):
        sets = [dict(s) for s in source]
    else:
        raise UsageError(f"calibration data must be a folder of .npz files or an iterable of "
                         f"input dicts, not a {type(source).__name__}")
    if not sets:
        raise UsageError(f"calibration data {source!r} holds no input sets",
                         hint="give at least one (a few hundred for good ranges)")
    return [{k: np.asarray(v) for k, v in s.items()} for s in sets]


def calibration_digest(sets: list[dict[str, np.ndarray]]) -> str:
    """sha256 over every set's names, dtypes, shapes and bytes, in order."""
    h = hashlib.sha256()
    for s in sets:
        for name in sorted(s):
            a = np.ascontiguousarray(s[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        h.update(b"\x00")
    return h.hexdigest()


def _from_path(path: Path):
    if path.is_file() and path.suffix == ".npz":
        files = [path]
    elif path.is_dir():
        files = sorted(path.glob("*.npz"))
        if not files:
            raise ModelFileError(f"calibration folder {path} has no .npz files")
    else:
        raise ModelFileError(f"calibration data {path} is not a folder or an .npz file")
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as data:
                yield {k: data[k] for k in data.files}
        except Exception as exc:
            raise ModelFileError(f"calibration file {f} is not a readable .npz: {exc}") from None


def _checked(s: dict, inputs, index: int) -> dict[str, np.ndarray]:
    names = [t.name for t in inputs]
    missing = [n for n in names if n not in s]
    extra = [n for n in s if n not in names]
    if missing or extra:
        raise InputError(f"calibration set {index}: missing inputs {missing}, unknown {extra}",
                         hint="model inputs: " + ", ".join(names))
    out = {}
    for t in inputs:
        a = np.asarray(s[t.name])
        want = tuple(t.shape)
        if len(a.shape) != len(want) or any(
                isinstance(d, int) and d != g for d, g in zip(want, a.shape, strict=True)):
            raise InputError(f"calibration set {index}: input '{t.name}' has shape "
                             f"{list(a.shape)}, the model takes {list(want)}")
        out[t.name] = a.astype(t.dtype, copy=False)
    return out
