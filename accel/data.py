"""Locates the data folders (targets/, schedules/, tuning_logs/) shipped inside the wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_FOLDERS = ("targets", "schedules", "tuning_logs")


def data_dir(name: str) -> Path:
    """Return the shipped data folder ``name``.

    A wheel carries it as ``accel/_data/<name>`` (hatch force-include); an editable install or
    a source checkout reads the folder at the top of the repository.
    """
    if name not in _FOLDERS:
        raise ValueError(f"unknown data folder {name!r}")
    packaged = Path(str(resources.files("accel"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name
