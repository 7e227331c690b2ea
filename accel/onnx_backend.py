"""ONNX's backend API (``onnx.backend.base``) over accel: prepare compiles for the host.

Usable like ``onnxruntime.backend``::

    import accel.onnx_backend as backend
    rep = backend.prepare(model, "CPU")
    outputs = rep.run([x])

Models with dynamic input dims are compiled on the first ``run``, with the shapes of the arrays
given (and again when a later call brings other shapes).
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


class AccelBackendRep(BackendRep):
    """A prepared model: compiled for the host (now, or on first run for dynamic shapes)."""

    def __init__(self, model: onnx.ModelProto):
        self._model = model
        weights = {init.name for init in model.graph.initializer}
        self._inputs = [vi for vi in model.graph.input if vi.name not in weights]
        self._modules: dict[tuple, object] = {}
        if all(_static_shape(vi) is not None for vi in self._inputs):
            self._module_for(None)

    def run(self, inputs, **kwargs) -> list[np.ndarray]:  # noqa: ARG002 (API signature)
        """Run on a list of arrays (graph input order), one array, or a dict by input name."""
        arrays = self._as_list(inputs)
        module = self._module_for(arrays)
        return list(module(*arrays))

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
        shapes = None if arrays is None else tuple(a.shape for a in arrays)
        key = shapes if any(_static_shape(vi) is None for vi in self._inputs) else None
        if key not in self._modules:
            pinned = {} if shapes is None else {vi.name: s for vi, s in zip(self._inputs, shapes,
                                                                              strict=True)}
            self._modules[key] = _compile_for_host(self._model, pinned)
        return self._modules[key]


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
