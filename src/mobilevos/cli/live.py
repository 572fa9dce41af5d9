"""``mobilevos live``: a camera or stream segmented as it runs (:mod:`mobilevos.live`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilevos.cli.common import add_backend_arguments, add_model_arguments, engine_source


def add_live(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="segment a camera or a stream as it runs, dropping the frames it cannot keep up with",
    )
    p.add_argument(
        "source",
        help="a camera index (0), a stream URL (rtsp://, http://), a device or a video file "
        "(played at its frame rate)",
    )
    p.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="X0,Y0,X1,Y1[:ID]",
        help="an object on the first frame, by a box around it (repeat for more)",
    )
    p.add_argument(
        "--click",
        action="append",
        default=[],
        metavar="X,Y[:ID][:neg]",
        help="an object on the first frame, by a click on it (without --box or --click: the "
        "largest salient object)",
    )
    p.add_argument("--out", type=Path, help="write masks/ (palette PNGs) and overlay.mp4 here")
    p.add_argument("--show", action="store_true", help="show the overlay in a window")
    p.add_argument("--loop", action="store_true", help="replay a video file from the start")
    p.add_argument("--max-frames", type=int, help="stop after segmenting this many frames")
    p.add_argument(
        "--size", type=int, default=480, help="short side the network sees (default 480)"
    )
    add_model_arguments(p)
    add_backend_arguments(p)
    p.set_defaults(func=_live)


def _live(args: argparse.Namespace) -> int:
    from mobilevos.live import LiveSession, first_prompt, open_live_source, run_live
    from mobilevos.predictor import VOSPredictor
    from mobilevos.prompts import parse_box, parse_click
    from mobilevos.runtime import open_engine, runtime_name

    prompts = (*map(parse_box, args.box), *map(parse_click, args.click))
    source = open_live_source(args.source, loop=args.loop)  # fails first, before a model loads
    try:
        engine = open_engine(engine_source(args), args.backend, device=args.device)
    except BaseException:
        source.close()
        raise
    session = LiveSession(VOSPredictor(engine, size=args.size), source, first_prompt(prompts))
    out = args.out
    result = run_live(
        session,
        out_dir=out / "masks" if out else None,
        overlay=out / "overlay.mp4" if out else None,
        show=args.show,
        max_frames=args.max_frames,
    )
    ended = "stopped (Ctrl-C)" if result.stopped_by_user else "ended"
    print(
        f"{ended}: segmented {result.frames} frames of {source.name} up to frame "
        f"{result.last_index}, dropped {result.dropped} ({runtime_name(engine)})"
        + (f"; masks in {out / 'masks'}, overlay {out / 'overlay.mp4'}" if out else "")
    )
    return 0
