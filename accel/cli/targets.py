"""`accel targets list|show NAME`."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    parser.add_argument("name", nargs="?", help="target name (for show); default: host")
    parser.add_argument("--targets-dir", help="extra folder of target TOML files")


def run(args) -> int:
    """List the targets, or show one resolved with its fingerprint."""
    from ..target import get_target, list_targets

    if args.action == "list":
        for spec in list_targets(args.targets_dir):
            print(f"{spec.name:16} {spec.family:9} {spec.export_format:15} {spec.description}")
        return 0
    spec = get_target(args.name, targets_dir=args.targets_dir)
    print(json.dumps({"name": spec.name, "family": spec.family, "schedule": spec.schedule,
                      "export": {"format": spec.export_format, "toolchain": spec.toolchain},
                      "runtime": {"arch": spec.arch, "device": spec.device,
                                  "cpu_features": list(spec.cpu_features)},
                      "tvm": spec.resolved(), "fingerprint": spec.fingerprint(),
                      "source": spec.source}, indent=2))
    return 0
