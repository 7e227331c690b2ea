"""The `accel` command line: a table of verbs, each a thin module over the library."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from ..errors import AccelError

# verb -> (module under accel.cli, one-line help). Modules are imported only when used.
VERBS = {
    "targets": ("targets", "list the named targets, or show one resolved"),
    "compile": ("compile", "compile an ONNX or torch.export model for a target"),
    "run": ("run", "run a compiled artifact on inputs from an .npz file"),
    "bench": ("bench", "time a compiled artifact, optionally beside onnxruntime"),
    "info": ("info", "print an artifact's manifest"),
    "tune": ("tune", "autotune a model's kernels for a target (MetaSchedule, resumable)"),
    "logs": ("logs", "list, show, prune or merge tuning records"),
    "cache": ("cache", "list, prune or clear the compile cache"),
    "demo": ("demo", "compile the bundled example for this host, run it, compare latency"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb's subparser."""
    parser = argparse.ArgumentParser(prog="accel", description="Compile models for a named "
                                     "hardware target with Apache TVM, and run them.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, (module, help_text) in VERBS.items():
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        _module(module).add_arguments(verb_parser)
    return parser


def _module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code (AccelError subclasses have stable codes)."""
    args = build_parser().parse_args(argv)
    try:
        return int(_module(VERBS[args.verb][0]).run(args) or 0)
    except AccelError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"accel: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("accel: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: show everything
        traceback.print_exc()
        print("accel: internal error (a bug in accel or TVM; the traceback is above)",
              file=sys.stderr)
        return 70
