"""`accel cache list|prune|clear`."""

from __future__ import annotations


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("action", choices=["list", "prune", "clear"], nargs="?", default="list")
    parser.add_argument("--max-size", metavar="SIZE",
                        help="for prune: keep at most this much, e.g. 500M (default: the cap, "
                             "$ACCEL_CACHE_MAX_SIZE or 8G)")
    parser.add_argument("--cache-dir", help="accel's cache folder (default $ACCEL_CACHE_DIR)")


def run(args) -> int:
    """List the entries (most recently used first), prune to a size, or clear everything."""
    from ..cache import CompileCache, age, parse_size

    store = CompileCache.default(args.cache_dir)
    if args.action == "clear":
        print(f"removed {store.clear()} entries from {store.root}")
    elif args.action == "prune":
        removed = store.prune(parse_size(args.max_size))
        print(f"removed {len(removed)} entries; {_mib(store.total_bytes())} left in {store.root}")
    else:
        entries = store.entries()
        for e in entries:
            print(f"{e.key[:16]}  {_mib(e.bytes):>9}  {age(e.last_used):>4} ago  "
                  f"{e.target:14} {e.source}")
        print(f"{len(entries)} entries, {_mib(sum(e.bytes for e in entries))} "
              f"(cap {_mib(store.max_bytes)}) in {store.root}")
    return 0


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
