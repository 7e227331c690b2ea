"""The launch plan of an OpenCL model: tensors, constants, and each kernel's grid, block and args.

Built from the same pipeline ``accel.compile`` runs (the Relax main before VM lowering, and each
PrimFunc lowered with TVM's TIR pipeline for the target), so the kernel names match the
artifact's ``device/kernels.cl``. Plain data: no TVM object survives in a Plan.
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from ..errors import InternalError


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One value of the graph: shape, dtype and memory scope ("global" or a texture scope)."""

    shape: tuple[int, ...]
    dtype: str
    scope: str = "global"


@dataclasses.dataclass(frozen=True)
class Launch:
    """One kernel launch; ``args`` name tensors, temporaries, or hold scalars."""

    kernel: str
    args: tuple
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Step:
    """One call of a PrimFunc: its launches, with params bound to graph values."""

    func: str
    bindings: dict[str, str]  # PrimFunc param name -> graph value name
    temporaries: dict[str, int]  # device workspace name -> bytes
    launches: tuple[Launch, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a runner needs besides the OpenCL source: inputs, outputs, values, steps."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: dict[str, TensorInfo]
    constants: dict[str, np.ndarray]
    steps: tuple[Step, ...]


def artifact_members(model, spec, options) -> dict[str, bytes]:
    """The plan members ``accel.compile`` stores in an OpenCL artifact."""
    return plan_members(build_plan(model, spec, options))


def build_plan(model, spec, options=None) -> Plan:
    """The launch plan of ``model`` (an accel Model) for an OpenCL TargetSpec."""
    from ..options import CompileOptions

    options = options or CompileOptions()
    mod, spec = _relax_before_lowering(model, spec, options)
    launches = _kernel_launches(mod, spec)
    return _GraphWalker(mod, launches).plan()


def _relax_before_lowering(model, spec, options):
    """The module after every phase up to VM lowering; the [fallback] target on failure."""
    from ..compiler import _copy_module

    pristine = _copy_module(model.mod)
    try:
        return _run_phases(model.mod, spec, options), spec
    except Exception:
        if not spec.fallback_tvm:
            raise
        fallback = dataclasses.replace(spec, tvm={**spec.tvm, **spec.fallback_tvm})
        return _run_phases(pristine, fallback, options), fallback


def _run_phases(mod, spec, options):
    from ..pipeline import run_until_lower

    return run_until_lower(mod, spec, options)


def _kernel_launches(mod, spec) -> dict[str, tuple[list, dict[str, int]]]:
    """PrimFunc name -> (launch records, temporaries), read from TVM's lowered host code."""
    import tvm

    from ..pipeline import tir_pipeline

    target = spec.tvm_target()
    funcs = {gv: f.with_attr("global_symbol", gv.name_hint) for gv, f in mod.functions.items()
             if isinstance(f, tvm.tirx.PrimFunc)}
    tir = tvm.tirx.transform.BindTarget(target)(tvm.IRModule(funcs))
    with target, tvm.transform.PassContext(opt_level=3):
        pipeline = tvm.tirx.get_tir_pipeline(tir_pipeline(spec))[0]  # what accel.compile runs
        host, _ = importlib.import_module("tvm.tirx.build").split_host_device_mods(
            pipeline(tir))
    return {gv.name_hint: _host_launches(f) for gv, f in host.functions.items()}


def _host_launches(func) -> tuple[list[Launch], dict[str, int]]:
    import tvm
    import tvm_ffi

    launches: list[Launch] = []
    temporaries: dict[str, int] = {}

    def on_call(call):
        if getattr(call.op, "name", "") == "tirx.call_ffi_kernel":
            launches.append(_launch(call))

    def on_alloc(node):
        buf = node.buffer
        if buf.scope() not in ("global", ""):
            raise InternalError(f"{buf.name}: a {buf.scope()} workspace is not supported")
        count = int(np.prod([int(d) for d in buf.shape]))
        temporaries[buf.name] = count * tvm.DataType(buf.dtype).bits // 8 * \
            tvm.DataType(buf.dtype).lanes

    tvm_ffi.structural_walk(func.body, [(tvm.ir.expr.Call, on_call),
                                        (tvm.tirx.AllocBuffer, on_alloc)], order="pre")
    return launches, temporaries


def _launch(call) -> Launch:
    """(name, buffer args..., scalars..., extents...) with the extents' thread tags in attrs."""
    tags = [str(t) for t in call.attrs.launch_params]
    if any(not t.startswith(("blockIdx", "threadIdx")) for t in tags):
        raise InternalError(f"launch params {tags}: dynamic shared memory is not supported")
    args = list(call.args)
    extents = [_constant(e, "thread extent") for e in args[len(args) - len(tags):]]
    dims = dict(zip(tags, extents, strict=True))
    grid = tuple(dims.get(f"blockIdx.{a}", 1) for a in "xyz")
    block = tuple(dims.get(f"threadIdx.{a}", 1) for a in "xyz")
    return Launch(str(args[0].value), tuple(_kernel_arg(a) for a in args[1:len(args) - len(tags)]),
                  grid, block)


def _kernel_arg(arg):
    if getattr(getattr(arg, "op", None), "name", "") == "tirx.buffer_data":
        return ("buffer", arg.args[0].name)
    return ("scalar", str(arg.dtype), _constant(arg, "scalar kernel argument"))


def _constant(expr, what: str):
    if not hasattr(expr, "value"):
        raise InternalError(f"{what} {expr} is not a constant: dynamic shapes are not supported "
                            "by the OpenCL emulation runner")
    return expr.value


class _GraphWalker:
    """Reads the Relax main: call_tir bindings, tuples, constants; nothing else is expected."""

    def __init__(self, mod, launches):
        self.mod, self.launches = mod, launches
        self.tensors: dict[str, TensorInfo] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.steps: list[Step] = []
        self.names: dict = {}  # relax Var -> value name (tuples: list of names)

    def plan(self) -> Plan:
        main = self.mod["main"]
        inputs = []
        for param in main.params:
            self.names[param] = param.name
            self.tensors[param.name] = _tensor_info(param)
            inputs.append(param.name)
        for block in main.body.blocks:
            for binding in block.bindings:
                self.names[binding.var] = self._value(binding.var, binding.value)
        outputs = self._value(None, main.body.body)
        outputs = tuple(outputs if isinstance(outputs, list) else [outputs])
        return Plan(tuple(inputs), outputs, self.tensors, self.constants, tuple(self.steps))

    def _value(self, var, value):
        import tvm
        from tvm import relax

        if isinstance(value, relax.Var):
            return self.names[value]
        if isinstance(value, relax.Tuple):
            return [self._value(None, f) for f in value.fields]
        if isinstance(value, relax.TupleGetItem):
            return self._value(None, value.tuple_value)[value.index]
        if isinstance(value, tvm.ir.GenericConst):
            return self._constant(value)
        if isinstance(value, relax.Call) and value.op.name == "relax.call_tir":
            return self._call_tir(var, value)
        raise InternalError(f"the OpenCL emulation runner cannot run this Relax binding: "
                            f"{str(value)[:200]}")

    def _constant(self, const, scope: str = "global") -> str:
        name = f"const{len(self.constants)}"
        data = const.value.numpy()
        self.constants[name] = data
        self.tensors[name] = TensorInfo(tuple(data.shape), str(data.dtype), scope)
        return name

    def _call_tir(self, var, call) -> str | list[str]:
        gv, args = call.args[0], call.args[1].fields
        func = self.mod[gv]
        ins = [self._value(None, a) for a in args]
        outs = func.params[len(ins):]
        # Relax names are hints (two vars may both be "lv"): number every value.
        base = f"%{len(self.tensors)}:{var.name if var is not None else 'tmp'}"
        out_names = [base if len(outs) == 1 else f"{base}.{i}" for i in range(len(outs))]
        for param, name in zip(outs, out_names, strict=True):
            self.tensors[name] = _buffer_info(param)
        for param, name in zip(func.params, ins, strict=False):
            self._check_scope(name, param)
        launches, temporaries = self.launches[gv.name_hint]
        if not launches:
            raise InternalError(f"{gv.name_hint}: no kernel launch found in its host code")
        bindings = {p.name: n for p, n in zip(func.params, ins + out_names, strict=True)}
        self.steps.append(Step(gv.name_hint, bindings, temporaries, tuple(launches)))
        return out_names[0] if len(outs) == 1 else out_names

    def _check_scope(self, name: str, param) -> None:
        """A constant takes the scope its consumer wants; a tensor must already have it."""
        want = _buffer_info(param).scope
        info = self.tensors[name]
        if info.scope == want:
            return
        if name in self.constants:
            self.tensors[name] = dataclasses.replace(info, scope=want)
            return
        raise InternalError(f"tensor {name} is in {info.scope} memory, and {param.name} "
                            f"expects {want}")


def _tensor_info(var) -> TensorInfo:
    ty = var.ty
    vdevice = getattr(ty, "vdevice", None)
    scope = str(vdevice.memory_scope) if vdevice is not None else "global"
    return TensorInfo(tuple(int(d) for d in ty.shape.values), str(ty.dtype), scope)


def _buffer_info(param) -> TensorInfo:
    scope = param.scope() or "global"
    return TensorInfo(tuple(int(d) for d in param.shape), str(param.dtype), scope)


PLAN_MEMBER = "device/plan.json"
CONSTANTS_MEMBER = "device/constants.npz"


def plan_members(plan: Plan) -> dict[str, bytes]:
    """The plan as artifact members: JSON for the structure, ``.npz`` for the constants."""
    import io
    import json

    body = {"inputs": plan.inputs, "outputs": plan.outputs,
            "tensors": {n: dataclasses.asdict(t) for n, t in plan.tensors.items()},
            "steps": [dataclasses.asdict(s) for s in plan.steps]}
    buffer = io.BytesIO()
    np.savez(buffer, **plan.constants)
    return {PLAN_MEMBER: json.dumps(body, indent=1).encode(), CONSTANTS_MEMBER: buffer.getvalue()}


def plan_from_members(plan_json: bytes, constants_npz: bytes) -> Plan:
    """The inverse of :func:`plan_members`."""
    import io
    import json

    body = json.loads(plan_json)
    with np.load(io.BytesIO(constants_npz), allow_pickle=False) as data:
        constants = {k: data[k] for k in data.files}
    tensors = {n: TensorInfo(tuple(t["shape"]), t["dtype"], t["scope"])
               for n, t in body["tensors"].items()}
    steps = tuple(Step(s["func"], s["bindings"], s["temporaries"],
                       tuple(_launch_from_json(la) for la in s["launches"]))
                  for s in body["steps"])
    return Plan(tuple(body["inputs"]), tuple(body["outputs"]), tensors, constants, steps)


def _launch_from_json(raw: dict) -> Launch:
    return Launch(raw["kernel"], tuple(tuple(a) for a in raw["args"]), tuple(raw["grid"]),
                  tuple(raw["block"]))
