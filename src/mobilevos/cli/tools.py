"""The other commands: ``info``, ``convert``, ``synth``, ``train``, ``demo`` and ``serve``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilevos.cli.common import parse_size


def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="presets, parameter counts, checkpoint contents, latency")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", help="describe one preset")
    group.add_argument("--checkpoint", type=Path, help="describe a checkpoint file")
    p.add_argument("--latency", action="store_true", help="time a frame at --size")
    p.add_argument("--size", type=int, default=480, help="short side for --latency (480)")
    p.add_argument("--frames", type=int, default=10, help="frames timed for --latency (10)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_info)


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


def add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert third-party weights to a mobilevos checkpoint")
    p.add_argument("format", choices=["stcn"], help="source format (official STCN weights)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from mobilevos.convert import convert_stcn

    convert_stcn(args.input, args.output)
    print(f"wrote teacher-r50 checkpoint {args.output}")
    return 0


def add_synth(sub: argparse._SubParsersAction) -> None:
    from mobilevos.data.synth import SynthConfig

    defaults = SynthConfig()
    p = sub.add_parser("synth", help="write a procedural synthetic VOS dataset (DAVIS layout)")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    p.add_argument("--videos", required=True, type=int, help="number of videos")
    p.add_argument("--frames", type=int, default=defaults.num_frames, help="frames per video")
    p.add_argument("--size", default=f"{defaults.height}x{defaults.width}", help="frame size HxW")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (names synth-<seed>…)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of val videos")
    p.add_argument("--textures", type=Path, default=None, help="folder of texture images")
    p.add_argument("--workers", type=int, default=0, help="render processes (0: serial)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier synthetic dataset at --out"
    )
    p.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    from mobilevos.data.synth import SynthConfig, write_davis_dataset

    height, width = parse_size(args.size)
    config = SynthConfig(
        height=height,
        width=width,
        num_frames=args.frames,
        texture_dir=None if args.textures is None else str(args.textures),
    )
    write_davis_dataset(
        args.out,
        args.videos,
        config,
        seed=args.seed,
        val_fraction=args.val_fraction,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
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


def _train(args: argparse.Namespace) -> int:
    from mobilevos.train import train
    from mobilevos.train.config import load_train_config

    config = load_train_config(args.config, args.overrides)
    final = train(config, resume=args.resume)
    print(f"final checkpoint: {final}")
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="segment a real clip with the default model: overlay video, contact sheet"
    )
    p.add_argument("--out", type=Path, default=Path("demo"))
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from mobilevos.demo import run_demo

    run_demo(args.out, device=args.device)
    return 0


def add_serve(sub: argparse._SubParsersAction) -> None:
    from mobilevos.serve import DEFAULT_PORT, WEB_SIZE

    p = sub.add_parser(
        "serve", help="serve the web page that runs the exported student in the browser"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    p.add_argument("--host", default="127.0.0.1", help="default %(default)s")
    p.add_argument(
        "--model-dir",
        type=Path,
        help="an exported model folder (default: the shipped student, exported for the browser "
        f"at {WEB_SIZE[0]}x{WEB_SIZE[1]} into the cache on first use)",
    )
    p.add_argument("--web-dir", type=Path, help="the page's folder (default: web/)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from mobilevos.serve import serve

    serve(args.web_dir, args.model_dir, args.host, args.port, verbose=args.verbose)
    return 0
