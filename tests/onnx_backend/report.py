"""Summarize an ONNX backend report (--onnx-backend-report): totals and a per-group table.

``python -m tests.onnx_backend.report REPORT.json [--markdown] [--expected]``; ``--expected``
prints expected_failures.txt lines for the failing cases instead (to seed or check the file).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

COLUMNS = ("pass", "unsupported", "error", "wrong", "skip")


def summarize(outcomes: dict[str, dict]) -> tuple[Counter, dict[str, Counter]]:
    """Totals by kind, and kinds per group."""
    totals: Counter = Counter()
    groups: dict[str, Counter] = defaultdict(Counter)
    for record in outcomes.values():
        totals[record["kind"]] += 1
        groups[record["group"]][record["kind"]] += 1
    return totals, groups


def table(outcomes: dict[str, dict]) -> str:
    """A markdown table: one row per group, worst groups (most failing cases) first."""
    totals, groups = summarize(outcomes)
    rows = ["| group | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    order = sorted(groups, key=lambda g: (-(sum(groups[g].values()) - groups[g]["pass"]), g))
    for group in order:
        rows.append(f"| {group} | " + " | ".join(str(groups[group][k]) for k in COLUMNS) + " |")
    rows.append("| **all** | " + " | ".join(f"**{totals[k]}**" for k in COLUMNS) + " |")
    return "\n".join(rows)


def expected_lines(outcomes: dict[str, dict]) -> list[str]:
    """expected_failures.txt lines for the unsupported and error cases."""
    return [f"{name} {r['kind']} {r['detail'].replace('<onnx.ModelProto>: ', '')}"
            for name, r in sorted(outcomes.items()) if r["kind"] in ("unsupported", "error")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--expected", action="store_true")
    args = parser.parse_args(argv)
    outcomes = json.loads(Path(args.report).read_text())
    if args.expected:
        print("\n".join(expected_lines(outcomes)))
        return 0
    totals, _ = summarize(outcomes)
    print(", ".join(f"{k} {totals[k]}" for k in COLUMNS), f"(of {sum(totals.values())})")
    print(table(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
