"""The production runtime: a lean import, many threads, DLPack inputs, caller-provided outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import accel
from accel import errors

from . import models

pytestmark = pytest.mark.e2e

_LEAN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import accel
    module = accel.load(sys.argv[1])
    out = module(np.zeros((1, 3, 16, 16), np.float32))
    heavy = ("torch", "onnx", "onnxruntime", "tvm", "tvm.relax", "xgboost", "accel.compiler",
             "accel.frontends", "accel.tuning", "accel.pipeline")
    print(json.dumps({"loaded": [m for m in heavy if m in sys.modules],
                      "shape": list(out[0].shape)}))
""")


def test_load_imports_no_frontend_tuner_compiler_or_torch(host_artifacts):
    proc = subprocess.run([sys.executable, "-c", _LEAN, str(host_artifacts["conv_block"])],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"loaded": [], "shape": [1, 5]}


def test_eight_threads_by_500_calls_equal_one_thread(host_artifacts):
    module = accel.load(host_artifacts["mlp_two_inputs"])
    rng = np.random.default_rng(7)
    inputs = [{"a": rng.standard_normal((2, 4, 16)).astype(np.float32),
               "b": rng.standard_normal((2, 4, 16)).astype(np.float32)} for _ in range(32)]
    expected = [module(**x) for x in inputs]

    def worker(i: int) -> int:
        wrong = 0
        for k in range(500):
            j = (i * 7 + k) % len(inputs)
            got = module(**inputs[j])
            wrong += not all(np.array_equal(g, e) for g, e in zip(got, expected[j],
                                                                  strict=True))
        return wrong

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(worker, range(8))) == [0] * 8


def test_torch_tensors_are_passed_without_a_copy(host_artifacts):
    torch = pytest.importorskip("torch")
    from accel.runtime import bind_inputs

    module = accel.load(host_artifacts["conv_block"])
    x = torch.randn(1, 3, 16, 16)
    (tensor,) = bind_inputs(module.inputs, (x,), {})
    assert tensor.data_ptr() == x.data_ptr()  # the same memory, no copy
    np.testing.assert_array_equal(module(x)[0], module(x.numpy())[0])


def test_non_contiguous_and_misaligned_inputs_are_copied_and_still_right(host_artifacts):
    torch = pytest.importorskip("torch")
    module = accel.load(host_artifacts["conv_block"])
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    expected = module(x)[0]
    transposed = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 1, 3, 2))).transpose(2, 3)
    assert not transposed.is_contiguous()
    raw = np.empty(x.nbytes + 4, np.uint8)[4:].view(np.float32).reshape(x.shape)
    raw[...] = x  # data 4 bytes off any 64-byte boundary
    for value in (transposed, raw, x[:, :, :, :]):
        np.testing.assert_array_equal(module(value)[0], expected)


def test_outputs_are_written_into_caller_arrays(host_artifacts):
    module = accel.load(host_artifacts["mlp_two_inputs"])
    feeds = models.feeds_for(models.mlp_two_inputs())
    out = [np.empty(t.shape, t.dtype) for t in module.outputs]
    returned = module(**feeds, out=out)
    assert all(r is o for r, o in zip(returned, out, strict=True))
    for got, want in zip(out, models.onnxruntime_outputs(models.mlp_two_inputs(), feeds),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_wrong_output_arrays_are_refused_clearly(host_artifacts):
    module = accel.load(host_artifacts["mlp_two_inputs"])
    feeds = models.feeds_for(models.mlp_two_inputs())
    with pytest.raises(errors.InputError, match="out= for output 'mean' is float64"):
        module(**feeds, out=[np.empty((2, 4, 16), np.float32), np.empty((2, 4))])
    with pytest.raises(errors.InputError, match="out= has 1 arrays.*2 outputs"):
        module(**feeds, out=[np.empty((2, 4, 16), np.float32)])


def test_a_torch_tensor_of_the_wrong_dtype_is_refused(host_artifacts):
    torch = pytest.importorskip("torch")
    module = accel.load(host_artifacts["conv_block"])
    with pytest.raises(errors.InputError, match="input 'x' has dtype float64, expected float32"):
        module(torch.zeros(1, 3, 16, 16, dtype=torch.float64))
