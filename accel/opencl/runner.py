"""Runs a launch plan's OpenCL kernels with pyopencl (PoCL on a CPU, or any OpenCL device).

Buffers hold "global" tensors; texture scopes are RGBA 2-D image arrays (one layer), laid out
as TVM's texture lowering addresses them (height = product of the dims before the scope's separator,
width = product of the rest but the last, which is the 4 channels of a texel).
"""

from __future__ import annotations

import numpy as np

from ..errors import AccelError, ArtifactError, InternalError
from .plan import Plan, TensorInfo


class OpenCLUnavailable(AccelError):
    """No OpenCL platform (or no pyopencl) on this machine."""

    exit_code = 16


def opencl_context():
    """A context on the first OpenCL device (PoCL's CPU device on a machine without a GPU)."""
    try:
        import pyopencl as cl
    except ImportError:
        raise OpenCLUnavailable("the OpenCL emulation runner needs pyopencl",
                                hint="pip install pyopencl; apt-get install pocl-opencl-icd"
                                ) from None
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:
        raise OpenCLUnavailable(f"no OpenCL platform here ({exc})",
                                hint="apt-get install pocl-opencl-icd") from None
    devices = [d for p in platforms for d in p.get_devices()]
    if not devices:
        raise OpenCLUnavailable("the OpenCL platforms here have no device")
    return cl.Context([devices[0]])


class OpenCLRunner:
    """Call with numpy inputs (by name); returns the outputs as numpy arrays, in order."""

    def __init__(self, plan: Plan, source: str, *, context=None):
        import pyopencl as cl

        self.plan = plan
        self.context = context or opencl_context()
        self.queue = cl.CommandQueue(self.context)
        try:
            self.program = cl.Program(self.context, source).build()
        except cl.Error as exc:
            raise InternalError(f"the OpenCL source does not build: {exc}") from exc
        missing = sorted(_kernel_names(plan) - set(self.program.kernel_names.split(";")))
        if missing:
            raise ArtifactError(f"the launch plan names kernels the OpenCL source lacks: "
                                f"{', '.join(missing[:5])}", hint="recompile the artifact")
        self.kernels = {name: cl.Kernel(self.program, name) for name in _kernel_names(plan)}
        self.constants = {n: self._upload(n, a) for n, a in plan.constants.items()}

    def __call__(self, **inputs) -> list[np.ndarray]:
        values = dict(self.constants)
        for name in self.plan.inputs:
            values[name] = self._upload(name, np.asarray(inputs[name]))
        for step in self.plan.steps:
            self._run_step(step, values)
        self.queue.finish()
        return [self._download(name, values[name]) for name in self.plan.outputs]

    def _run_step(self, step, values: dict) -> None:
        import pyopencl as cl

        for name in step.bindings.values():
            if name not in values:
                values[name] = self._allocate(self.plan.tensors[name])
        local = {p: values[n] for p, n in step.bindings.items()}
        local.update({t: cl.Buffer(self.context, cl.mem_flags.READ_WRITE, max(size, 4))
                      for t, size in step.temporaries.items()})
        for launch in step.launches:
            kernel = self.kernels[launch.kernel]
            kernel.set_args(*[_arg(a, local) for a in launch.args])
            size = tuple(g * b for g, b in zip(launch.grid, launch.block, strict=True))
            cl.enqueue_nd_range_kernel(self.queue, kernel, size, launch.block)

    def _allocate(self, info: TensorInfo):
        import pyopencl as cl

        if info.scope == "global":
            nbytes = int(np.prod(info.shape)) * np.dtype(info.dtype).itemsize
            return cl.Buffer(self.context, cl.mem_flags.READ_WRITE, max(nbytes, 4))
        # TVM's OpenCL codegen declares every texture an image2d_array_t (one layer here).
        width, height = texture_extent(info)
        return cl.create_image(self.context, cl.mem_flags.READ_WRITE, _image_format(info.dtype),
                               shape=(width, height, 1), is_array=True)

    def _upload(self, name: str, array: np.ndarray):
        import pyopencl as cl

        info = self.plan.tensors[name]
        array = np.ascontiguousarray(array, dtype=info.dtype)
        memory = self._allocate(info)
        if info.scope == "global":
            cl.enqueue_copy(self.queue, memory, array)
        else:
            width, height = texture_extent(info)
            cl.enqueue_copy(self.queue, memory, array, origin=(0, 0, 0),
                            region=(width, height, 1))
        return memory

    def _download(self, name: str, memory) -> np.ndarray:
        import pyopencl as cl

        info = self.plan.tensors[name]
        out = np.empty(info.shape, info.dtype)
        if info.scope == "global":
            cl.enqueue_copy(self.queue, out, memory)
        else:
            width, height = texture_extent(info)
            cl.enqueue_copy(self.queue, out, memory, origin=(0, 0, 0), region=(width, height, 1))
        return out


def texture_extent(info: TensorInfo) -> tuple[int, int]:
    """(width, height) in texels of a tensor in a texture scope (TVM's layout separator)."""
    rank = len(info.shape)
    separator = {"global.texture": rank - 2, "global.texture-weight": 1,
                 "global.texture-nhwc": 1 if rank == 3 else 2}.get(info.scope)
    if separator is None or info.shape[-1] != 4:
        raise InternalError(f"unsupported texture tensor {info}")
    height = int(np.prod(info.shape[:separator]))
    return int(np.prod(info.shape[separator:-1])), height


def _image_format(dtype: str):
    import pyopencl as cl

    channel = {"float32": cl.channel_type.FLOAT, "float16": cl.channel_type.HALF_FLOAT}
    if dtype not in channel:
        raise InternalError(f"textures of {dtype} are not supported")
    return cl.ImageFormat(cl.channel_order.RGBA, channel[dtype])


def _arg(arg, local: dict):
    if arg[0] == "buffer":
        return local[arg[1]]
    return np.dtype(arg[1]).type(arg[2])


def _kernel_names(plan: Plan) -> set[str]:
    return {launch.kernel for step in plan.steps for launch in step.launches}
