"""The module-level loop shared by accel's function-rewriting passes."""

from __future__ import annotations

import tvm
from tvm import relax


def rewrite_relax_functions(mod, rewrite):
    """A copy of ``mod`` with every Relax function replaced by ``rewrite(func)``, normalized."""
    updates = {gvar: rewrite(func) for gvar, func in mod.functions_items()
               if isinstance(func, relax.Function)}
    mod = mod.clone() if hasattr(mod, "clone") else tvm.IRModule(dict(mod.functions_items()))
    for gvar, func in updates.items():
        mod[gvar] = func
    return relax.transform.Normalize()(mod)
