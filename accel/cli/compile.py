"""`accel compile MODEL -t TARGET -o OUT`."""

from __future__ import annotations


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("model", help="an .onnx file or a torch.export program (.pt2)")
    parser.add_argument("-t", "--target", default=None, help="named target (default: host)")
    parser.add_argument("-o", "--output", required=True,
                        help="artifact path (.accel); a folder for C-package targets")
    parser.add_argument("--opt", default="O2", help="optimization level O0..O3 (default O2)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,..",
                        help="static shape for an input with dynamic dims (repeatable)")
    parser.add_argument("--input-value", action="append", default=[], metavar="NAME=V0,V1,..",
                        help="bind an input to constant values, e.g. a sample rate (repeatable)")
    parser.add_argument("--disable-pass", action="append", default=[], metavar="NAME",
                        help="skip a pass by name (repeatable)")
    parser.add_argument("--desired-layout", metavar="LAYOUT", default=None,
                        help="convolution layout: native or NHWC (default: per target family)")
    parser.add_argument("--dump-ir", metavar="DIR", help="write the IR after every pass")
    parser.add_argument("--targets-dir", help="extra folder of target TOML files")
    parser.add_argument("--toolchain", metavar="CXX",
                        help="link a .so with this compiler (e.g. the NDK's clang++) instead "
                             "of the target's object archive")
    parser.add_argument("--cache", default=None, metavar="POLICY",
                        help="compile cache: on, off, readonly, redo (default $ACCEL_CACHE or on)")
    quant = parser.add_argument_group("quantization")
    quant.add_argument("--quantize", metavar="MODE", default=None,
                       help="int8 (calibrated), fp16, int8-weight or int4-weight")
    quant.add_argument("--calibration", metavar="DATA", default=None,
                       help="int8: a folder of .npz input sets (one per file)")
    quant.add_argument("--observer", default="entropy",
                       help="int8 activation ranges: minmax, percentile or entropy (default)")
    quant.add_argument("--percentile", type=float, default=99.99,
                       help="the percentile observer's percentile (default 99.99)")
    quant.add_argument("--keep-float", action="append", default=[], metavar="NAME",
                       help="leave this layer in float (repeatable)")
    quant.add_argument("--sensitivity", type=float, default=None, metavar="ERR",
                       help="int8: leave in float each layer whose own relative error "
                            "exceeds ERR on the calibration data")
    quant.add_argument("--group-size", type=int, default=128,
                       help="weight-only modes: input channels per scale (default 128)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the compile report")


def run(args) -> int:
    """Compile and print a one-line summary (and the report with --verbose)."""
    from ..compiler import compile as compile_model
    from ..options import CompileOptions
    from ..signature import parse_shape_option, parse_value_option
    from ..target import get_target

    options = CompileOptions(opt_level=args.opt,
                             input_shapes=dict(map(parse_shape_option, args.input_shape)),
                             input_values=dict(map(parse_value_option, args.input_value)),
                             disabled_passes=tuple(args.disable_pass),
                             desired_layout=args.desired_layout,
                             quantize=_quantize_options(args))
    spec = get_target(args.target, targets_dir=args.targets_dir)
    if args.toolchain:
        from ..ndk import with_toolchain

        spec = with_toolchain(spec, args.toolchain)
    artifact = compile_model(args.model, spec, options=options, output=args.output,
                             dump_ir=args.dump_ir, cache=args.cache,
                             calibration=args.calibration)
    if spec.is_micro:
        from ..micro.report import print_report

        print_report(args.model, artifact.manifest, path=artifact.path,
                     verbose=args.verbose)
        return 0
    report = artifact.manifest["report"]
    how = "from the compile cache" if artifact.cached else "compiled"
    print(f"{how}: {args.model} for {spec.name} -> {artifact.path} "
          f"({report['kernels']} kernels, {report['kernels_unfused']} before fusion, "
          f"{report.get('kernels_tuned', 0)} from tuning records)")
    if args.verbose:
        for phase in report["phases"]:
            kernels = f"  kernels={phase['kernels']}" if "kernels" in phase else ""
            print(f"  {phase['name']:16} {phase['seconds']:8.3f} s{kernels}")
    return 0


def _quantize_options(args):
    """QuantizeOptions from the quantization flags; None without --quantize."""
    if args.quantize is None:
        return None
    from ..quantize import QuantizeOptions

    return QuantizeOptions(mode=args.quantize, observer=args.observer,
                           percentile=args.percentile, keep_float=tuple(args.keep_float),
                           sensitivity=args.sensitivity, group_size=args.group_size)
