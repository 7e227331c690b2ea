"""An OpenCL artifact run on this machine's OpenCL device (PoCL) from its own members, no TVM.

``accel.compile`` stores, beside ``device/kernels.cl``, the launch plan (``device/plan.json``)
and the weights (``device/constants.npz``) of Mali and Adreno artifacts.
"""

from __future__ import annotations

import os

import numpy as np

from ..artifact import Artifact, open_artifact
from ..errors import ArtifactError
from ..runtime import bind_inputs
from ..signature import NamedIO
from .plan import CONSTANTS_MEMBER, PLAN_MEMBER, plan_from_members
from .runner import OpenCLRunner

SOURCE_MEMBER = "device/kernels.cl"


def load_emulated(path: str | os.PathLike, *, context=None) -> EmulatedModule:
    """Load an OpenCL artifact's kernels on the first OpenCL device here (PoCL on a CPU)."""
    artifact = open_artifact(path)
    if artifact.manifest["runtime"]["device"] != "opencl":
        raise ArtifactError(f"{artifact.path}: target '{artifact.target_name}' is not an "
                            "OpenCL target; --emulate runs only Mali and Adreno artifacts")
    members = artifact.read_members()
    missing = [m for m in (SOURCE_MEMBER, PLAN_MEMBER, CONSTANTS_MEMBER) if m not in members]
    if missing:
        raise ArtifactError(f"{artifact.path}: no {', '.join(missing)} (compiled by an older "
                            "accel); recompile it to run it emulated")
    plan = plan_from_members(members[PLAN_MEMBER], members[CONSTANTS_MEMBER])
    return EmulatedModule(artifact, OpenCLRunner(plan, members[SOURCE_MEMBER].decode(),
                                                 context=context))


class EmulatedModule(NamedIO):
    """Call with arrays (by position or name); returns numpy outputs, like CompiledModule."""

    def __init__(self, artifact: Artifact, runner: OpenCLRunner):
        self.artifact = artifact
        self.inputs = artifact.inputs
        self.outputs = artifact.outputs
        self._runner = runner

    def __call__(self, *args, **kwargs) -> list[np.ndarray]:
        """Check the inputs against the signature, run every kernel, return the outputs."""
        tensors = bind_inputs(self.inputs, args, kwargs)
        # The plan names inputs after the Relax params: the signature's order.
        feeds = zip(self._runner.plan.inputs, (np.from_dlpack(t) for t in tensors), strict=True)
        return self._runner(**dict(feeds))

    def __repr__(self) -> str:
        return f"<EmulatedModule {self.artifact.target_name} on OpenCL>"
