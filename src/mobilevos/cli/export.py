"""``mobilevos export``: the model as fixed-shape programs in a runtime format
(:func:`mobilevos.formats.export.export_model`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mobilevos.cli.common import add_model_arguments, load_model_from_args, parse_size
from mobilevos.errors import CalibrationWarning, ConfigError
from mobilevos.formats.registry import FORMATS


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the video model as fixed-shape programs")
    p.add_argument(
        "--format",
        choices=list(FORMATS),
        default="onnx",
        help="; ".join(f"{f.name}: {f.summary}" for f in FORMATS.values()),
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the programs + manifest")
    p.add_argument("--size", default="480x864", help="network input HxW, multiples of 16")
    p.add_argument("--max-objects", type=int, default=3, help="objects per call (default 3)")
    p.add_argument("--opset", type=int, help="ONNX opset (--format onnx; default 17)")
    p.add_argument("--int8", action="store_true", help="static int8 quantization")
    p.add_argument(
        "--calibration",
        type=Path,
        help="a video or frame folder of your own to calibrate int8 on, besides the built-in "
        "generated and real clips",
    )
    p.add_argument(
        "--calibration-method",
        help="how int8 sets activation ranges: onnx: minmax, percentile, entropy; executorch: "
        "histogram, minmax, percentile (default: the format's; docs/export.md compares them)",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip the comparison with PyTorch (or fp32)"
    )
    add_model_arguments(p)
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from mobilevos.formats.calibration import read_calibration_frames
    from mobilevos.formats.export import export_model

    size = parse_size(args.size)
    for name in ("calibration", "calibration_method"):
        if getattr(args, name) is not None and not args.int8:
            raise ConfigError(f"--{name.replace('_', '-')} is for --int8")
    frames = read_calibration_frames(args.calibration) if args.calibration else None
    with warnings.catch_warnings():  # printed below as one line, from the manifest
        warnings.simplefilter("ignore", CalibrationWarning)
        manifest = export_model(
            load_model_from_args(args),
            args.out,
            size,
            args.max_objects,
            format=args.format,
            opset=args.opset,
            int8=args.int8,
            calibration_frames=frames,
            calibration_method=args.calibration_method,
            verify=not args.no_verify,
        )
    line = f"exported {manifest['precision']} {args.format} programs for {size[0]}x{size[1]}, "
    line += f"{args.max_objects} objects, to {args.out}"
    check = manifest.get("verification")
    if check:
        worst = max(check["max_abs_diff"].values())
        line += f"; verified on {check['frames']} frames: max abs diff {worst:.2e}, "
        line += f"mean mask IoU {check['mean_iou']:.4f}"
    print(line)
    if check and check.get("warning"):
        print(f"warning: {args.out}: {check['warning']}", file=sys.stderr)
    return 0
