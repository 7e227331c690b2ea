"""`accel tune MODEL -t TARGET [--trials N | --time-budget 8h] [--work-dir DIR] [--resume]`."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("model", help="an .onnx file or a torch.export program (.pt2)")
    parser.add_argument("-t", "--target", default=None, help="named target (default: host)")
    parser.add_argument("--trials", type=int, help="trial budget over all kernels")
    parser.add_argument("--time-budget", metavar="DURATION", help="wall-time budget: 90s, 15m, 8h")
    parser.add_argument("--max-trials-per-task", type=int, help="cap for any one kernel")
    parser.add_argument("--work-dir", help="where the run's database and logs live "
                                           "(default: in accel's cache folder)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --work-dir")
    parser.add_argument("--rpc-tracker", metavar="HOST:PORT", help="measure on a device farm")
    parser.add_argument("--rpc-key", metavar="KEY", help="the farm's device key")
    parser.add_argument("--trials-per-iter", type=int, default=8,
                        help="candidates measured per scheduler step (default 8)")
    parser.add_argument("--population", type=int, default=128,
                        help="evolutionary search population (default 128)")
    parser.add_argument("--opt", default="O2", help="optimization level the kernels come from")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,..")
    parser.add_argument("--tuning-logs", help="record store to save into (default "
                                              "$ACCEL_TUNING_LOGS or the user data folder)")
    parser.add_argument("--seed", type=int, help="random seed of the search")


def run(args) -> int:
    """Tune, printing a line per round, then the report."""
    from ..options import CompileOptions
    from ..signature import parse_shape_option
    from ..tuning.options import RPCOptions, TuneOptions, parse_duration
    from ..tuning.tuner import tune

    rpc = RPCOptions.parse(args.rpc_tracker, args.rpc_key) if args.rpc_tracker else None
    compile_options = CompileOptions(opt_level=args.opt, tuning_logs=args.tuning_logs,
                                     input_shapes=dict(map(parse_shape_option,
                                                           args.input_shape)))
    options = TuneOptions(trials=args.trials, time_budget_s=parse_duration(args.time_budget),
                          max_trials_per_task=args.max_trials_per_task,
                          work_dir=args.work_dir, resume=args.resume, rpc=rpc,
                          trials_per_iter=args.trials_per_iter, seed=args.seed,
                          population=args.population,
                          compile_options=compile_options)
    report = tune(args.model, args.target, options=options,
                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    print_report(report)
    return 0


def print_report(report) -> None:
    """The per-task table and the summary lines."""
    print(f"{'task':44} {'weight':>6} {'trials':>6} {'best us':>10}")
    for t in report.tasks:
        best = f"{t['best_us']:.2f}" if t["best_us"] is not None else "-"
        print(f"{t['name'][:44]:44} {t['weight']:>6g} {t['trials']:>6} {best:>10}")
    estimate = f"{report.estimated_ms:.3f} ms" if report.estimated_ms is not None else "n/a"
    print(f"{report.trials} trials ({report.failed_trials} failed) in "
          f"{report.elapsed_s / 60:.1f} min; estimated latency {estimate}; {report.stopped}")
    if report.lost_devices:
        print(f"devices lost during the run: {', '.join(report.lost_devices)}")
    print(f"work dir: {report.work_dir}")
    print(f"records saved to: {report.records_dir or '(none valid yet)'}")
    if report.plot:
        print(f"tuning curve: {report.plot}")
