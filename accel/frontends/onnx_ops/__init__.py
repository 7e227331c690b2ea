"""accel's own ONNX converters and guards, laid over TVM's importer map while a model imports."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable

#: op type -> converter class (``get_converter(opset)``, like TVM's OnnxOpConverter)
CONVERTERS: dict[str, type] = {}
#: op type -> check(node, graph_info) returning why the op cannot be imported, or None
GUARDS: dict[str, list[Callable]] = {}
#: ops the importer handles itself, outside its converter map
BUILTIN_OPS = frozenset({"If", "Constant"})
#: the modules that register converters and guards (imported on first use: they need TVM)
_MODULES = ("guards", "activations", "attention", "dropout", "elementwise", "fp16",
            "layer_norm", "loss", "onehot", "pow", "quant", "reduce_minmax", "reduce_sum", "rnn",
            "sequence", "tile")
_LOCK = threading.RLock()


class ConverterFailed(Exception):
    """A converter raised while importing one node: the op is unsupported in that form."""

    def __init__(self, op: str, node: str, message: str):
        super().__init__(f"{op} ({node}): {message}")
        self.op, self.node, self.message = op, node, message


def converter(op: str):
    """Register a converter class for ``op``, replacing TVM's (decorator)."""
    def register(cls):
        CONVERTERS[op] = cls
        return cls
    return register


def guard(*ops: str):
    """Register a check run before import on every node of these ops (decorator)."""
    def register(fn):
        for op in ops:
            GUARDS.setdefault(op, []).append(fn)
        return fn
    return register


def load_all() -> None:
    """Import the modules that register accel's converters and guards."""
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")


def convert_map() -> dict[str, type]:
    """TVM's converter map with accel's converters over it."""
    from tvm.relax.frontend.onnx import onnx_frontend

    load_all()
    return {**onnx_frontend._get_convert_map(), **CONVERTERS}


@contextlib.contextmanager
def installed():
    """Make TVM's importer read accel's map, each converter wrapped to name the failing op."""
    from tvm.relax.frontend.onnx import onnx_frontend

    with _LOCK:
        original = onnx_frontend._get_convert_map
        wrapped = {op: _named(op, cls) for op, cls in convert_map().items()}
        onnx_frontend._get_convert_map = lambda: wrapped
        try:
            yield
        finally:
            onnx_frontend._get_convert_map = original


def _named(op: str, cls: type) -> type:
    """A converter class whose failures raise ConverterFailed with the op and node name."""
    def get_converter(opset):
        try:
            impl = cls.get_converter(opset)
        except Exception as exc:
            raise ConverterFailed(op, "unnamed", _first_line(exc)) from exc

        def convert(bb, inputs, attr, params):
            try:
                result = impl(bb, inputs, attr, params)
                # normalize here, so a type error is blamed on this op, not the importer
                return bb.normalize(result) if _is_expr(result) else result
            except ConverterFailed:
                raise
            except Exception as exc:
                node = attr.get("tvm_custom", {}).get("name") or "unnamed"
                raise ConverterFailed(op, node, _first_line(exc)) from exc
        return convert

    return type(f"Accel{cls.__name__}", (), {"get_converter": staticmethod(get_converter)})


def _is_expr(value) -> bool:
    from tvm import relax

    return isinstance(value, relax.Expr)


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]
