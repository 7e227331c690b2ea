"""Measurement inputs for tuning candidates: random floats, zeros for integer tensors.

MetaSchedule's default fills every argument at random, which gives gather/take kernels index
tensors far out of range: the kernel faults and every trial of its task fails. Zeros are a
valid index for any table, and integer data kernels (int8 conv, say) run in the same time
whatever the values.
"""

from __future__ import annotations

import numpy as np

_FILL = "tvm.contrib.random.random_fill_for_measure"


def local_alloc(device, args_info, alloc_repeat: int):
    """LocalRunner's ``f_alloc_argument``: runs in the measuring worker process."""
    import tvm

    return _alloc(tvm.get_global_func(_FILL), device, args_info, alloc_repeat)


def rpc_alloc(session, device, args_info, alloc_repeat: int):
    """RPCRunner's ``f_alloc_argument``: tensors live on the remote device."""
    return _alloc(session.get_function(_FILL), device, args_info, alloc_repeat)


def _alloc(random_fill, device, args_info, alloc_repeat: int):
    import tvm

    def tensor(dtype: str, shape):
        arg = tvm.runtime.empty(shape=shape, dtype=dtype, device=device)
        if dtype.startswith(("float", "bfloat")):
            random_fill(arg)
        else:
            arg.copyfrom(np.zeros(shape, dtype=dtype))
        return arg

    repeated = []
    for _ in range(alloc_repeat):
        args = []
        for info in args_info:
            if info[0] != "TENSOR":
                raise NotImplementedError(f"cannot allocate a measurement argument {info}")
            args.append(tensor(info[1], info[2]))
        repeated.append(args)
    return repeated
