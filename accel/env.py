"""Every environment variable accel reads, in one place; each has an explicit-argument twin."""

from __future__ import annotations

import os
from pathlib import Path

#: Extra folder of user target TOML files (twin: ``targets_dir=`` / ``--targets-dir``).
TARGETS_DIR = "ACCEL_TARGETS_DIR"
#: Cache folder for compiled artifacts and built helpers (twin: ``cache_dir=``).
CACHE_DIR = "ACCEL_CACHE_DIR"
#: Cache policy: on, off, readonly, redo (twin: ``cache=`` / ``--cache``).
CACHE_POLICY = "ACCEL_CACHE"
#: Size cap of the compile cache, e.g. 500M or 8G (twin: ``max_bytes=`` / ``--max-size``).
CACHE_MAX_SIZE = "ACCEL_CACHE_MAX_SIZE"
#: The user's folder of tuning records (twin: ``tuning_logs=`` / ``--tuning-logs``).
TUNING_LOGS = "ACCEL_TUNING_LOGS"
#: Hex or text key for HMAC-signing artifacts (twin: ``signing_key=``).
SIGNING_KEY = "ACCEL_SIGNING_KEY"


def get(name: str, explicit: str | os.PathLike | None = None) -> str | None:
    """Return the explicit value if given, else the environment variable, else None."""
    if explicit is not None:
        return str(explicit)
    value = os.environ.get(name)
    return value or None


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return accel's cache folder: explicit argument, then $ACCEL_CACHE_DIR, then platformdirs."""
    value = get(CACHE_DIR, explicit)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("accel"))
