"""Before/Expected IR for UpcastFloat16Math (accel/passes/upcast_float16_math.py)."""

from __future__ import annotations

import pytest
import tvm
from tvm.script import relax as R

from accel.passes import UpcastFloat16Math

pytestmark = pytest.mark.passes


def test_upcast_float16_math_computes_erf_of_float16_in_float32():
    @tvm.script.ir_module
    class Before:
        @R.function
        def main(x: R.Tensor((4,), "float16"), y: R.Tensor((4,), "float32")):
            with R.dataflow():
                a = R.erf(x)
                b = R.exp(y)  # float32 already: unchanged
                c = R.abs(x)  # not a transcendental: unchanged
                gv = (a, b, c)
                R.output(gv)
            return gv

    @tvm.script.ir_module
    class Expected:
        @R.function
        def main(x: R.Tensor((4,), "float16"), y: R.Tensor((4,), "float32")):
            with R.dataflow():
                lv = R.astype(x, "float32")
                lv1 = R.erf(lv)
                a = R.astype(lv1, "float16")
                b = R.exp(y)
                c = R.abs(x)
                gv = (a, b, c)
                R.output(gv)
            return gv

    tvm.ir.assert_structural_equal(UpcastFloat16Math()(Before), Expected)
