"""The ONNX backend test cases run against accel.onnx_backend: names, op groups and the CI slice."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

EXPECTED_FILE = Path(__file__).with_name("expected_failures.txt")
#: One case in SLICE_EVERY (by sorted name) runs in CI under the `frontends` marker.
SLICE_EVERY = 10
#: Categories left out of the slice: whole networks that take minutes to compile here.
HEAVY_CATEGORIES = ("OnnxBackendRealModelTest",)
#: Cases compared at a looser rtol than onnx's default 1e-3, each with why (name: rtol, reason).
TOLERANCES = {
    "test_attention_4d_causal_fp16_expanded": (
        2e-3, "2 of 192 values one float16 ulp off: numpy's float16 matmul rounds the "
              "accumulator to float16 after every step, no compiled kernel does"),
}
#: Outcome kinds; only "unsupported" and "error" may be listed as expected failures.
KINDS = ("pass", "unsupported", "error", "wrong")


@dataclasses.dataclass(frozen=True)
class Case:
    """One CPU test of onnx.backend.test.BackendTest."""

    category: str  # e.g. OnnxBackendNodeModelTest
    name: str  # e.g. test_relu_cpu
    group: str  # the op for node tests, else the category

    @property
    def in_slice(self) -> bool:
        return self.category not in HEAVY_CATEGORIES and _slice_index(self.name) % SLICE_EVERY == 0


@functools.cache
def backend_test():
    """onnx's BackendTest over accel; building it generates the node cases (about 8 s)."""
    import warnings

    import onnx.backend.test

    import accel.onnx_backend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators overflow casts on purpose
        return onnx.backend.test.BackendTest(
            accel.onnx_backend, __name__,
            test_kwargs={name: {"rtol": rtol} for name, (rtol, _) in TOLERANCES.items()})


@functools.cache
def all_cases() -> tuple[Case, ...]:
    """Every CPU case, sorted by name."""
    runner = backend_test()
    ops = _node_ops()
    cases = []
    for category, cls in runner.test_cases.items():
        for name in dir(cls):
            if name.startswith("test_") and name.endswith("_cpu"):
                group = ops.get(name.removesuffix("_cpu"), category.removeprefix("OnnxBackend")
                                .removesuffix("Test"))
                cases.append(Case(category, name, group))
    return tuple(sorted(cases, key=lambda c: c.name))


@functools.cache
def _slice_names() -> dict[str, int]:
    return {c.name: i for i, c in enumerate(all_cases())}


def _slice_index(name: str) -> int:
    return _slice_names()[name]


def _node_ops() -> dict[str, str]:
    """Test name (no device suffix) -> the op it tests; '_expanded' cases take their base's op."""
    from onnx.backend.test.loader import load_model_tests

    ops = {}
    for case in load_model_tests(kind="node"):
        nodes = [n.op_type for n in case.model.graph.node]
        ops[case.name] = nodes[0] if len(nodes) == 1 else None
    for name in list(ops):
        if ops[name] is None:
            base = name.replace("_expanded_ver18", "").replace("_expanded", "")
            ops[name] = ops.get(base) or "(multi-node)"
    return ops


def read_expected(path: Path = EXPECTED_FILE) -> dict[str, tuple[str, str]]:
    """case name -> (kind, reason), from lines 'NAME KIND REASON...' ('#' starts a comment)."""
    expected = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, kind, *reason = line.split(None, 2)
        expected[name] = (kind, reason[0] if reason else "")
    return expected


def data_home() -> Path:
    """Where onnx's runner writes generated data (ONNX_HOME), keyed by the onnx version."""
    import onnx

    from accel import env

    return env.cache_dir() / "onnx-backend" / f"onnx-{onnx.__version__}"


def set_data_home() -> Path:
    """Point onnx's runner at the cached data folder (it writes the real models' inputs)."""
    home = data_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["ONNX_HOME"] = str(home)
    return home
