"""accel's own default CPU schedule rules (DLight-style), named in schedules/<family>.toml."""

from .contraction import Contraction
from .injective import Injective
from .int8 import Int8Contraction

__all__ = ["Contraction", "Injective", "Int8Contraction"]
