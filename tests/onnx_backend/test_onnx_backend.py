"""ONNX's own backend test suite over accel.onnx_backend: each case passes, or fails as listed.

A case fails "as listed" when expected_failures.txt names it with the outcome it has
(``unsupported``: accel refuses the model, naming the op and why; ``error``: TVM fails to build
or run it). A wrong result is never allowed, and a listed case that passes must be removed, so
the list only shrinks. The CI slice (one case in ten) runs under ``frontends``; the rest is
``slow``: ``python -m pytest tests/onnx_backend -m "frontends or slow"`` runs all of it.
"""

from __future__ import annotations

import unittest

import pytest

from . import cases

_CASES = cases.all_cases()
_EXPECTED = cases.read_expected()


def _params():
    for case in _CASES:
        marks = [pytest.mark.frontends] + ([] if case.in_slice else [pytest.mark.slow])
        yield pytest.param(case, id=case.name, marks=marks)


def run_case(case: cases.Case) -> tuple[str, str]:
    """Run one case; return its outcome kind and a one-line detail."""
    from accel.errors import AccelError, UnsupportedOpError

    cls = cases.backend_test().test_cases[case.category]
    try:
        getattr(cls(case.name), case.name)()
    except unittest.SkipTest as exc:
        return "skip", str(exc)
    except UnsupportedOpError as exc:
        return "unsupported", _one_line(exc)
    except AssertionError as exc:
        return "wrong", _one_line(exc)
    except AccelError as exc:
        return "error", f"{type(exc).__name__}: {_one_line(exc)}"
    except Exception as exc:  # TVM's runtime errors, numpy's comparison of odd outputs
        return "error", f"{type(exc).__name__}: {_one_line(exc)}"
    return "pass", ""


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return " | ".join(lines[:3])[:300] if lines else type(exc).__name__


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", _params())
def test_case_passes_or_fails_as_listed(case, onnx_backend_outcomes, monkeypatch):
    monkeypatch.setenv("ACCEL_CACHE", "off")
    kind, detail = run_case(case)
    onnx_backend_outcomes[case.name] = {"group": case.group, "category": case.category,
                                        "kind": kind, "detail": detail}
    listed = _EXPECTED.get(case.name)
    if kind == "skip":
        pytest.skip(detail)
    if kind == "wrong":
        pytest.fail(f"wrong result: {detail}")
    if kind == "pass":
        assert listed is None, f"{case.name} passes now: remove it from expected_failures.txt"
        return
    assert listed is not None, f"{case.name} fails and is not listed: {kind}: {detail}"
    assert listed[0] == kind, f"listed as {listed[0]}, but is {kind}: {detail}"
    pytest.xfail(f"{kind}: {listed[1]}")


def test_expected_failures_name_real_cases_with_allowed_kinds():
    names = {c.name for c in _CASES}
    unknown = sorted(set(_EXPECTED) - names)
    assert not unknown, f"expected_failures.txt names unknown cases: {unknown[:5]}"
    bad = sorted(n for n, (kind, _) in _EXPECTED.items() if kind not in ("unsupported", "error"))
    assert not bad, f"only unsupported/error may be listed: {bad[:5]}"
