"""`accel info ARTIFACT`: print the manifest."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("artifact", help="a compiled .accel file")


def run(args) -> int:
    """Print the artifact's manifest as JSON."""
    from ..artifact import open_artifact

    print(json.dumps(open_artifact(args.artifact).manifest, indent=2))
    return 0
