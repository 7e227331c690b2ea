"""Guards: op forms for which TVM's converter gives wrong results, refused with the reason."""

from __future__ import annotations

import onnx
from onnx import TensorProto

from . import guard

#: element types with no TVM dtype, or none that crosses accel's numpy/DLPack boundary
_NO_DTYPE = {getattr(TensorProto, n): n.lower() for n in (
    "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0", "UINT4",
    "INT4", "FLOAT4E2M1", "INT2", "UINT2", "STRING", "COMPLEX64", "COMPLEX128")
    if hasattr(TensorProto, n)}


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@guard("*")
def exotic_dtype(node, info):
    """Tensors of a type TVM lacks; bfloat16 only where it crosses the numpy boundary."""
    for name in [*node.input, *node.output]:
        if name in info.boundary and not info.is_tensor(name):
            return "a sequence, optional or map model input or output (accel runs on tensors)"
        elem = info.elem_type(name) if name else None
        if elem in _NO_DTYPE:
            return f"dtype {_NO_DTYPE[elem]} (no TVM dtype for it)"
        if elem == TensorProto.BFLOAT16 and name in info.boundary:
            return "a bfloat16 model input or output (numpy's DLPack has no bfloat16)"
    return None


@guard("BatchNormalization")
def batchnorm_training(node, info):
    if _attrs(node).get("training_mode", 0):
        return "training_mode=1 (batch statistics and running-stat outputs)"
    return None


@guard("ConvTranspose")
def convtranspose_output_shape(node, info):
    if "output_shape" in _attrs(node):
        return "the output_shape attribute (TVM's converter ignores it)"
    return None


@guard("Mod")
def float_mod(node, info):
    floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
    if not _attrs(node).get("fmod", 0) and info.elem_type(node.input[0]) in floats:
        return "fmod=0 on floats (TVM's differs from numpy at inf, zero and nan)"
    return None


@guard("NonMaxSuppression")
def nms(node, info):
    return "TVM's result has a fixed, padded row count; ONNX's is data-dependent"


@guard("RoiAlign")
def roialign_max(node, info):
    mode = _attrs(node).get("mode", b"avg")
    if mode in (b"max", "max"):
        return "mode=max (TVM's pools differently)"
    return None


@guard("SpaceToDepth")
def space_to_depth_crd(node, info):
    if _attrs(node).get("mode", b"DCR") in (b"CRD", "CRD"):
        return "mode=CRD (TVM's converter ignores the mode)"
    return None


@guard("PRelu")
def prelu_old_broadcast(node, info):
    slope, data = info.shape(node.input[1]), info.shape(node.input[0])
    if info.opset < 7 and slope and len(slope) == 1 and (slope[0] or 0) > 1 and data \
            and len(data) > 2:
        return "opset < 7 per-channel slope (TVM broadcasts it over the last axis)"
    return None


@guard("Dropout")
def dropout_training(node, info):
    if len(node.input) > 2 and node.input[2]:
        mode = info.const(node.input[2])
        if mode is None or bool(mode):
            return "training mode (random; accel compiles for inference)"
    return None


@guard("Resize")
def resize_downsample(node, info):
    attrs = _attrs(node)
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if attrs.get("antialias", 0):
        return "antialias=1 (TVM's converter ignores it)"
    if mode == "nearest":
        return None
    scales = info.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if scales is not None and scales.size and (scales < 1).any():
        return f"{mode} downsampling (TVM's interpolation differs from ONNX's)"
    return None


_REDUCE = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMean", "ReduceProd",
           "ReduceSum", "ReduceSumSquare", "Trilu")


@guard(*_REDUCE)
def zero_size(node, info):
    """A zero-size result, or any zero-size input for the ops that fail on one."""
    dims, out = info.shape(node.input[0]), info.shape(node.output[0])
    whole = node.op_type in ("ReduceLogSumExp", "Trilu")
    if (out and 0 in out) or (whole and dims and 0 in dims):
        return "a zero-size tensor (TVM's kernel rejects its strides)"
    return None


@guard("RMSNormalization")
def rms_axis0(node, info):
    dims = info.shape(node.input[0])
    if dims and _attrs(node).get("axis", -1) % len(dims) == 0:
        return "axis 0 (TVM fails to build it)"
    return None


@guard("MaxPool")
def maxpool_indices(node, info):
    if len(node.output) > 1 and node.output[1]:
        return "the Indices output (TVM's converter has none)"
    return None


@guard("Split")
def split_zero(node, info):
    sizes = info.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    if sizes is not None and (sizes.reshape(-1)[:-1] == 0).any():
        return "zero-size splits before the last (TVM needs increasing split points)"
    return None


@guard("TopK")
def topk_uint64(node, info):
    if info.elem_type(node.input[0]) == TensorProto.UINT64:
        return "uint64 input (TVM's topk has no uint64)"
    return None


@guard("Resize")
def resize_half_pixel_symmetric(node, info):
    mode = _attrs(node).get("coordinate_transformation_mode", b"half_pixel")
    if mode in (b"half_pixel_symmetric", "half_pixel_symmetric"):
        return "coordinate_transformation_mode=half_pixel_symmetric (TVM lacks it)"
    return None
