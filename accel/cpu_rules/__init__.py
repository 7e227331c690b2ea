"""accel's own default CPU schedule rules (DLight-style), named in schedules/<family>.toml."""

from .contraction import Contraction
from .injective import Injective

__all__ = ["Contraction", "Injective"]
