"""Guards: op forms for which TVM's converter gives wrong results, refused with the reason."""

from __future__ import annotations

from . import guard  # noqa: F401  (guards register with @guard(OP))
