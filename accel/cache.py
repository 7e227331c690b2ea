"""The compile cache: artifacts keyed by a hash of every compile input, locked, LRU-capped.

An entry is an ordinary artifact file, ``<cache>/artifacts/<key>.accel``, whose manifest names
its key. Entries are written atomically under a per-key lock (two processes compiling the same
key leave one good entry, and the second one waits and reuses it), checked on every hit (a
corrupt entry is removed and rebuilt), and evicted least-recently-used past a size cap.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from . import env
from .artifact import Artifact, open_artifact
from .errors import AccelError, UsageError
from .fsutil import sha256_json

#: Bumped whenever what a key covers, or the entry layout, changes.
CACHE_VERSION = 1
DEFAULT_MAX_BYTES = 8 << 30
_LOCK_TIMEOUT_S = 3600  # a compile holding the lock can take long; never wait forever
_SUFFIX = ".accel"


class CachePolicy(enum.Enum):
    """How a compile uses the cache: read and write, neither, read only, or rebuild and write."""

    ON = "on"
    OFF = "off"
    READONLY = "readonly"
    REDO = "redo"

    @classmethod
    def parse(cls, value: str | CachePolicy | None) -> CachePolicy:
        """Accept a policy or its name (None: $ACCEL_CACHE, else on); reject others, listing all."""
        if isinstance(value, CachePolicy):
            return value
        text = env.get(env.CACHE_POLICY, value) or "on"
        try:
            return cls(text.lower())
        except ValueError:
            raise UsageError(f"unknown cache policy '{text}'",
                             hint=f"valid: {', '.join(p.value for p in cls)}") from None

    @property
    def reads(self) -> bool:
        """Whether a hit is reused."""
        return self in (CachePolicy.ON, CachePolicy.READONLY)

    @property
    def writes(self) -> bool:
        """Whether a fresh compile is stored."""
        return self in (CachePolicy.ON, CachePolicy.REDO)


def cache_key(inputs: dict) -> str:
    """The content key of a compile: sha256 of the canonical JSON of all its inputs."""
    return sha256_json({"cache_version": CACHE_VERSION, **inputs})


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One cached artifact, as listed by ``accel cache list``."""

    key: str
    path: Path
    bytes: int
    last_used: float
    source: str
    target: str


@dataclasses.dataclass(frozen=True)
class CompileCache:
    """The artifact cache under one folder, with a size cap in bytes."""

    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def default(cls, cache_dir: str | os.PathLike | None = None,
                max_bytes: int | None = None) -> CompileCache:
        """The cache in accel's cache folder ($ACCEL_CACHE_DIR), capped by $ACCEL_CACHE_MAX_SIZE."""
        limit = max_bytes if max_bytes is not None else parse_size(env.get(env.CACHE_MAX_SIZE))
        return cls(env.cache_dir(cache_dir) / "artifacts", limit or DEFAULT_MAX_BYTES)

    def path_for(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        return self.root / f"{key}{_SUFFIX}"

    def lock(self, key: str):
        """An inter-process lock for compiling ``key`` (a ``filelock.FileLock``)."""
        import filelock

        self.root.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(str(self.root / f"{key}.lock"), timeout=_LOCK_TIMEOUT_S)

    def lookup(self, key: str) -> Artifact | None:
        """The verified entry for ``key``, marked as used; None if absent or corrupt (removed)."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            artifact = open_artifact(path)
            if artifact.manifest.get("cache_key") != key:
                raise AccelError(f"{path}: manifest is for another cache key")
            artifact.library_bytes()  # checks the library's sha256
        except AccelError as exc:
            warnings.warn(f"accel cache: removing a corrupt entry, it will be rebuilt ({exc})",
                          stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # least-recently-used order is by modification time
        return artifact

    def entries(self) -> list[CacheEntry]:
        """Every entry, most recently used first (unreadable ones listed as '?')."""
        found = [self._entry(path) for path in self._paths()]
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def total_bytes(self) -> int:
        """The size of every entry together."""
        return sum(p.stat().st_size for p in self._paths())

    def prune(self, max_bytes: int | None = None) -> list[Path]:
        """Remove least-recently-used entries until the total fits; return what was removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        paths = sorted(self._paths(), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in paths)
        removed = []
        while paths and total > limit:
            victim = paths.pop(0)
            total -= victim.stat().st_size
            victim.unlink(missing_ok=True)
            removed.append(victim)
        return removed

    def clear(self) -> int:
        """Remove every entry and lock file; return how many entries there were."""
        paths = list(self._paths())
        for path in paths:
            path.unlink(missing_ok=True)
        for lock in self.root.glob("*.lock") if self.root.is_dir() else ():
            lock.unlink(missing_ok=True)
        return len(paths)

    def _paths(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from (p for p in self.root.glob(f"*{_SUFFIX}") if p.is_file())

    def _entry(self, path: Path) -> CacheEntry:
        stat = path.stat()
        try:
            manifest = open_artifact(path).manifest
            source, target = manifest["model"]["source"], manifest["target"]["name"]
        except (AccelError, KeyError):
            source = target = "?"
        return CacheEntry(path.stem, path, stat.st_size, stat.st_mtime, source, target)


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str | None) -> int | None:
    """Parse a size such as ``500M``, ``8G`` or ``1048576`` (bytes); None stays None."""
    if text is None:
        return None
    value = str(text).strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS else (value, "")
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise UsageError(f"bad cache size '{text}'", hint="e.g. 500M, 8G, or bytes") from None


def age(seconds_since_epoch: float) -> str:
    """A short human age such as ``5m`` or ``3d``."""
    delta = max(0.0, time.time() - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"
