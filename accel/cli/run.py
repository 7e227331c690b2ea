"""`accel run ARTIFACT --inputs in.npz -o out.npz [--rpc-tracker HOST:PORT --rpc-key KEY]`."""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    """Declare this verb's arguments."""
    parser.add_argument("artifact", help="a compiled .accel file")
    parser.add_argument("--inputs", help=".npz keyed by input name (default: random inputs)")
    parser.add_argument("-o", "--output", help=".npz to write, keyed by output name")
    from ..remote import add_device_arguments

    add_device_arguments(parser)


def run(args) -> int:
    """Load, run once, save or summarize the outputs."""
    import numpy as np

    from ..errors import InputError
    from ..remote import load_local_or_remote
    from ..timing import random_inputs

    module = load_local_or_remote(args.artifact, tracker=args.rpc_tracker, key=args.rpc_key,
                                  emulate=args.emulate)
    if args.inputs:
        path = Path(args.inputs)
        if not path.is_file():
            raise InputError(f"{path}: no such inputs file")
        try:
            with np.load(path, allow_pickle=False) as data:
                inputs = {k: data[k] for k in data.files}
        except (ValueError, OSError) as exc:
            raise InputError(f"{path}: not an .npz file ({exc})") from None
    else:
        inputs = random_inputs(module.inputs)
    outputs = dict(zip(module.output_names, module(**inputs), strict=True))
    if args.output:
        from ..fsutil import atomic_path

        with atomic_path(args.output) as tmp, open(tmp, "wb") as f:
            np.savez(f, **outputs)
    for name, value in outputs.items():
        print(f"{name}: {value.dtype}{list(value.shape)} mean={float(np.mean(value)):.6g}")
    return 0
