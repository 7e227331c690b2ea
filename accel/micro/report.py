"""The printed summary of a C package: sizes per part, stack, and the arena plan."""

from __future__ import annotations


def print_report(model: str, manifest: dict, *, path, verbose: bool = False) -> None:
    """Print one summary line; with ``verbose`` the size split, stack and arena plan too."""
    sizes, report = manifest["sizes"], manifest["report"]
    print(f"compiled {model} for {manifest['target']['name']} -> {path} "
          f"(C package, {report['kernels']} kernels, flash {sizes['flash']} B, "
          f"RAM {sizes['ram']} B)")
    if not verbose:
        return
    for phase in report["phases"]:
        print(f"  {phase['name']:16} {phase['seconds']:8.3f} s")
    print(f"  sizes ({sizes['tool']}, bytes):   flash      RAM")
    for part, row in sizes["parts"].items():
        print(f"    {part:24} {row['flash']:>7} {row['ram']:>8}")
    print(f"    {'arena':24} {0:>7} {sizes['arena']:>8}")
    print(f"    {'total':24} {sizes['flash']:>7} {sizes['ram']:>8}")
    stack = sizes["stack"]
    print(f"  stack (gcc -fstack-usage): accel_model_run {stack['accel_model_run']} B + "
          f"accel_call {stack['accel_call']} B + largest kernel frame {stack['max_kernel']} B")
    rewrites = report.get("micro_rewrites", {})
    if rewrites.get("float64_kernels"):
        print("  float64 (soft-float on single-precision FPUs) in kernels: "
              + ", ".join(rewrites["float64_kernels"]))
    counts = {k: v for k, v in rewrites.items() if k != "float64_kernels" and v}
    if counts:
        print("  micro rewrites: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for line in manifest["arena"]["plan"]:
        print(f"  {line}")
