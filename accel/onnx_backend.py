"""ONNX's backend API (``onnx.backend.base``) over accel: prepare compiles for the host.

Usable like ``onnxruntime.backend``::

    import accel.onnx_backend as backend
    rep = backend.prepare(model, "CPU")
    outputs = rep.run([x])

Models with dynamic input dims are compiled on the first ``run``, with the shapes of the arrays
given (and again when a later call brings other shapes). So are models that take an operand
which fixes an output shape or a build-time parameter (Reshape's shape, a Reduce's axes,
TopK's k, ...) as a graph input: accel compiles static code, so such an input is bound as a
constant of the value given, and a call with another value compiles again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from .errors import InputError, UsageError

#: The devices this backend runs on: the host CPU only.
DEVICES = ("CPU",)
_REDUCE = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
           "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")
#: op -> input positions that fix the output shape or a build-time parameter
SHAPE_OPERANDS = {**dict.fromkeys(_REDUCE, (1,)), "Reshape": (1,), "Expand": (1,), "Tile": (1,),
                  "Pad": (1, 2, 3), "Slice": (1, 2, 3, 4), "TopK": (1,), "Split": (1,),
                  "OneHot": (1, 2), "CumSum": (1,), "Resize": (1, 2, 3), "Upsample": (1,),
                  "Squeeze": (1,), "Unsqueeze": (1,), "Trilu": (1,), "CenterCropPad": (1,),
                  "SplitToSequence": (1,), "AffineGrid": (1,), "CumProd": (1,)}
#: a bound operand has at most this many elements
MAX_BOUND_ELEMENTS = 64


class AccelBackendRep(BackendRep):
    """A prepared model: compiled for the host (now, or on first run for dynamic shapes)."""

    def __init__(self, model: onnx.ModelProto):
        self._model = model
        weights = {init.name for init in model.graph.initializer}
        self._inputs = [vi for vi in model.graph.input if vi.name not in weights]
        self._bound = _shape_operand_inputs(model) & {vi.name for vi in self._inputs}
        self._dynamic = any(_static_shape(vi) is None for vi in self._inputs)
        self._modules: dict[tuple, object] = {}
        tensors_only = all(vi.type.HasField("tensor_type") for vi in self._inputs)
        if not tensors_only or (not self._dynamic and not self._bound):
            self._module_for(None)  # compile now (or refuse sequence inputs now)

    def run(self, inputs, **kwargs) -> list[np.ndarray]:  # noqa: ARG002 (API signature)
        """Run on a list of arrays (graph input order), one array, or a dict by input name."""
        arrays = self._as_list(inputs)
        module = self._module_for(arrays)
        fed = [a for vi, a in zip(self._inputs, arrays, strict=True) if vi.name not in self._bound]
        return list(module(*fed))

    def _as_list(self, inputs) -> list[np.ndarray]:
        if isinstance(inputs, dict):
            return [np.asarray(inputs[vi.name]) for vi in self._inputs]
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        arrays = [np.asarray(x) for x in inputs]
        if len(arrays) != len(self._inputs):
            raise InputError(f"got {len(arrays)} inputs, the model takes {len(self._inputs)}")
        return arrays

    def _module_for(self, arrays):
        named = {} if arrays is None else dict(zip([vi.name for vi in self._inputs], arrays,
                                                   strict=True))
        bound = {n: a for n, a in named.items() if n in self._bound}
        key = (tuple(a.shape for a in named.values()) if self._dynamic else None,
               tuple((n, a.dtype.str, a.shape, a.tobytes()) for n, a in sorted(bound.items())))
        if key not in self._modules:
            shapes = {n: a.shape for n, a in named.items() if n not in bound} \
                if self._dynamic else {}
            model = _bind_inputs(self._model, bound) if bound else self._model
            self._modules[key] = _compile_for_host(model, shapes)
        return self._modules[key]


def _shape_operand_inputs(model: onnx.ModelProto) -> set[str]:
    """Names read in a shape-operand position (SHAPE_OPERANDS) by a main-graph node."""
    names = set()
    for node in model.graph.node:
        for pos in SHAPE_OPERANDS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos]:
                names.add(node.input[pos])
    return names


def _bind_inputs(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of the model with these graph inputs turned into initializers of these values."""
    too_big = [n for n, a in values.items() if a.size > MAX_BOUND_ELEMENTS]
    if too_big:
        raise InputError(f"input(s) {', '.join(too_big)} fix output shapes and are bound at "
                         f"build time, but have over {MAX_BOUND_ELEMENTS} elements")
    from .frontends.onnx_bind import as_initializers

    return as_initializers(model, values)


def _static_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    ttype = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not ttype.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim]
    return tuple(dims) if all(d >= 0 for d in dims) else None


def _compile_for_host(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]):
    """Compile (cache off) into a temporary artifact, load it, and drop the file."""
    import accel
    from accel.options import CompileOptions

    options = CompileOptions(input_shapes=shapes)
    with tempfile.TemporaryDirectory(prefix="accel-onnx-backend-") as tmp:
        artifact = accel.compile(model, "host", options=options, cache="off",
                                 output=Path(tmp) / "model.accel")
        return accel.load(artifact.path)


class AccelBackend(Backend):
    """accel as an ONNX backend: compile for this host's CPU, run through accel.load."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> AccelBackendRep:
        """Check and compile the model; see :func:`prepare`."""
        _check_device(device)
        super().prepare(model, device, **kwargs)
        return AccelBackendRep(model)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs, device: str = "CPU", **kwargs):
        """Prepare and run once."""
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs, device: str = "CPU", outputs_info=None,
                 **kwargs):
        """Run one node on arrays: it is wrapped in a one-node model first."""
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        model = _node_model(node, [np.asarray(x) for x in inputs], outputs_info,
                            kwargs.get("opset_version"))
        return cls.run_model(model, list(inputs), device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """Only the host CPU."""
        return str(device).upper().split(":")[0] in DEVICES


def _check_device(device: str) -> None:
    if not AccelBackend.supports_device(device):
        raise UsageError(f"accel.onnx_backend runs on the host CPU, not '{device}'",
                         hint="valid: CPU")


def _node_model(node, arrays, outputs_info, opset_version) -> onnx.ModelProto:
    from onnx import helper

    present = [name for name in node.input if name]
    ins = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for name, a in zip(present, arrays, strict=True)]
    outs = []
    for i, name in enumerate(node.output):
        dtype, shape = outputs_info[i] if outputs_info else (None, None)
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype)) if dtype is not None else 0
        outs.append(helper.make_tensor_value_info(name, elem, shape))
    graph = helper.make_graph([node], "run_node", ins, outs)
    opsets = [helper.make_opsetid("", opset_version)] if opset_version else None
    model = helper.make_model(graph, opset_imports=opsets)
    return onnx.shape_inference.infer_shapes(model)


prepare = AccelBackend.prepare
run_model = AccelBackend.run_model
run_node = AccelBackend.run_node
supports_device = AccelBackend.supports_device
is_compatible = AccelBackend.is_compatible
