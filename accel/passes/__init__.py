"""accel's own Relax passes, one per file (the file is the snake_case of the pass name)."""

from .fold_batch_norm_into_conv import FoldBatchNormIntoConv
from .fold_simple_constants import FoldSimpleConstants
from .lift_scalar_min_max import LiftScalarMinMax
from .quantize_matmul_weights import QuantizeMatmulWeights
from .upcast_float16_math import UpcastFloat16Math

__all__ = ["FoldBatchNormIntoConv", "FoldSimpleConstants", "LiftScalarMinMax",
           "QuantizeMatmulWeights", "UpcastFloat16Math"]
