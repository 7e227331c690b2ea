"""`accel bench ARTIFACT [--compare onnxruntime --model M.onnx] [--rpc-tracker H:P --rpc-key K]`."""

from __future__ import annotations


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("artifact", help="a compiled .accel file")
    parser.add_argument("--compare", action="append", default=[], metavar="RUNTIME",
                        help="reference runtime to time beside accel: onnxruntime")
    parser.add_argument("--model", help="the source .onnx model, for the reference runtime")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, default=10, help="calls per round (default 10)")
    from ..remote import add_device_arguments

    add_device_arguments(parser)


def run(args) -> int:
    """Print the latency table (median, p90, ratio) and the output differences."""
    from ..benchmark import compare
    from ..remote import load_local_or_remote
    from ..timing import render_table

    module = load_local_or_remote(args.artifact, tracker=args.rpc_tracker, key=args.rpc_key,
                                  emulate=args.emulate)
    rows, diffs = compare(module, model=args.model, references=tuple(args.compare),
                          rounds=args.rounds, calls=args.calls)
    print(render_table(rows))
    for ref, diff in diffs.items():
        print(f"max |accel - {ref}| = {diff:.3g}")
    return 0
