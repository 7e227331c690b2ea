"""OpenCL models (Mali, Adreno) run without TVM's OpenCL runtime: a launch plan plus pyopencl."""

from .plan import Plan, build_plan
from .runner import OpenCLRunner, OpenCLUnavailable, opencl_context

__all__ = ["OpenCLRunner", "OpenCLUnavailable", "Plan", "build_plan", "opencl_context"]
