"""Default schedules per family: reads schedules/<name>.toml into a DLight rule chain."""

from __future__ import annotations

import functools
import tomllib

from .data import data_dir
from .errors import TargetError, did_you_mean

_KEYS = {"dlight"}


@functools.cache
def load_schedule(name: str) -> dict:
    """The schedule file ``schedules/<name>.toml`` as a dict, validated."""
    folder = data_dir("schedules")
    path = folder / f"{name}.toml"
    if not path.is_file():
        names = [p.stem for p in folder.glob("*.toml")]
        raise TargetError(f"unknown schedule family '{name}'", hint=did_you_mean(name, names))
    data = tomllib.loads(path.read_text())
    unknown = set(data) - _KEYS
    if unknown:
        raise TargetError(f"{path}: unknown key(s) {sorted(unknown)}", hint=f"valid: {_KEYS}")
    return data


def _rule_modules() -> dict:
    """Where rule names point: ``accel.X`` is one of accel's own CPU rules, else DLight's."""
    from tvm.s_tir import dlight

    from . import cpu_rules

    return {"accel": cpu_rules, **{m: getattr(dlight, m) for m in ("cpu", "gpu", "adreno")}}


def dlight_rules(name: str) -> list:
    """Instantiate the rules named in the schedule file, in order."""
    modules = _rule_modules()
    rules = []
    for rule in load_schedule(name).get("dlight", []):
        module_name, _, cls_name = rule.partition(".")
        cls = getattr(modules.get(module_name), cls_name, None)
        if cls is None:
            raise TargetError(f"schedules/{name}.toml: unknown DLight rule '{rule}'")
        rules.append(cls() if module_name == "accel" else _declining(cls()))
    return rules


def _declining(rule):
    """``rule``, declining (None) the kernels on which it fails an internal assertion instead of
    failing the build: DLight's GEMV asserts on reductions to a single element (a conv with one
    output channel, a sum of all weights), which the next rule in the chain schedules."""
    from tvm.s_tir.dlight.base import ScheduleRule

    class Declining(ScheduleRule):
        def is_target_available(self, target) -> bool:
            return rule.is_target_available(target)

        def apply(self, func, target, tunable):
            try:
                return rule.apply(func, target, tunable)
            except AssertionError:
                return None

    return Declining()


def default_schedule_pass(name: str):
    """A pass applying the family's DLight rules to every kernel that has no schedule yet."""
    from tvm.s_tir import dlight

    rules = dlight_rules(name)
    return dlight.ApplyDefaultSchedule(*rules) if rules else None
