"""`accel logs list|show|prune|merge`: the tuning record store."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("action", choices=["list", "show", "prune", "merge"])
    parser.add_argument("paths", nargs="*", help="show/prune: a record folder or work dir; "
                                                 "merge: SOURCES... DEST")
    parser.add_argument("--tuning-logs", help="the user record store (default "
                                              "$ACCEL_TUNING_LOGS or the user data folder)")


def run(args) -> int:
    """Do the action; list prints one record folder a line."""
    from ..errors import UsageError
    from ..tuning import store

    if args.action == "list":
        for rs in store.record_sets(args.tuning_logs):
            records = rs.manifest.get("records", "?")
            print(f"{rs.target:16} {rs.fingerprint}  {rs.workloads:4} workloads  "
                  f"{records} records  {rs.path}")
        return 0
    if args.action == "merge":
        if len(args.paths) < 2:
            raise UsageError("merge needs one or more SOURCE folders and a DEST folder")
        count = store.merge_folders(args.paths[:-1], args.paths[-1])
        print(f"{args.paths[-1]}: {count} records (best per workload)")
        return 0
    if len(args.paths) != 1:
        raise UsageError(f"{args.action} needs exactly one record folder")
    if args.action == "show":
        print(json.dumps(store.show(args.paths[0]), indent=2))
    else:
        before, after = store.prune_folder(args.paths[0])
        print(f"{args.paths[0]}: {before} records -> {after} (best per workload)")
    return 0
