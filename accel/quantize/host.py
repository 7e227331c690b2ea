"""Build a Relax module for this host with accel's own pipeline and run it on input sets."""

from __future__ import annotations

import dataclasses

import numpy as np


def prepare(mod):
    """The module after the pipeline's cleanup and simplify phases (batch norm folded into
    convs, constants folded): the graph whose convs and matmuls the compile will see."""
    import tvm

    from ..pipeline import CLEANUP, SIMPLIFY

    passes = [*CLEANUP.build(None, None, None), *SIMPLIFY.build(None, None, None)]
    return tvm.transform.Sequential(passes)(mod)


class HostRunner:
    """A module compiled for the host (no cache); ``run(inputs)`` gives its flat outputs."""

    def __init__(self, model, mod):
        import tvm
        from tvm import relax

        from ..compiler import build
        from ..options import CompileOptions
        from ..target import get_target

        executable, _, _ = build(dataclasses.replace(model, mod=mod), get_target(None),
                                 CompileOptions())
        self.vm = relax.VirtualMachine(executable, tvm.cpu())
        self.names = [t.name for t in model.inputs]

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every output, nested tuples flattened, as numpy arrays."""
        import tvm

        args = [tvm.runtime.tensor(np.ascontiguousarray(inputs[n])) for n in self.names]
        return _flat(self.vm["main"](*args))


def _flat(value) -> list[np.ndarray]:
    if hasattr(value, "numpy"):
        return [value.numpy()]
    return [a for item in value for a in _flat(item)]


def with_extra_outputs(mod, exprs_of):
    """``mod`` whose main also returns the values ``exprs_of(func)`` lists, after its own
    outputs (flattened in that order); dataflow blocks are dissolved so inner values escape."""
    from tvm import relax

    mod = relax.transform.ToNonDataflow()(mod)
    func = mod["main"]
    extra = exprs_of(func)
    body = relax.BlockBuilder().normalize(
        relax.SeqExpr(func.body.blocks, relax.Tuple([func.body.body, *extra])))
    new = relax.Function(func.params, body, None, func.is_pure, func.attrs)
    mod["main"] = new
    return relax.transform.Normalize()(mod)
