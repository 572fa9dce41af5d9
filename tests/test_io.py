"""Tests for mobilevos.io: frame sources, masks, palette PNGs, overlays and video writing."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mobilevos.errors import InputError
from mobilevos.io import (
    DAVIS_PALETTE,
    VOID_LABEL,
    Frame,
    OverlayWriter,
    VideoWriter,
    blend_labels,
    natural_key,
    open_frames,
    open_masks,
    read_label_image,
    write_palette_png,
    write_video,
    write_y4m,
)
from mobilevos.io.video import _pad_to_even

H, W = 48, 64
# Lossy codecs blur chroma across block edges; sample well inside flat blocks with this margin.
TOLERANCE = 12


def block_frame(index: int, height: int = H, width: int = W) -> np.ndarray:
    """Two flat colour blocks (left, right) whose colours depend on ``index``."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (40 + 20 * index, 200 - 15 * index, 60)
    image[:, width // 2 :] = (30, 90, 220 - 20 * index)
    return image


def block_centres(image: np.ndarray) -> np.ndarray:
    """The colours at the centres of the two blocks of :func:`block_frame`."""
    height, width = image.shape[:2]
    return np.stack([image[height // 2, width // 4], image[height // 2, 3 * width // 4]])


def only_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_palette_has_davis_colours() -> None:
    assert DAVIS_PALETTE.shape == (256, 3)
    assert DAVIS_PALETTE[0].tolist() == [0, 0, 0]
    assert DAVIS_PALETTE[1].tolist() == [128, 0, 0]
    assert DAVIS_PALETTE[2].tolist() == [0, 128, 0]
    assert DAVIS_PALETTE[3].tolist() == [128, 128, 0]
    assert DAVIS_PALETTE[7].tolist() == [128, 128, 128]
    assert DAVIS_PALETTE[VOID_LABEL].tolist() == [224, 224, 192]


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["frame10", "frame2", "Frame1", "frame1b", "a", "\u00b2"]  # superscript two
    expected = ["a", "Frame1", "frame1b", "frame2", "frame10", "\u00b2"]
    assert sorted(names, key=natural_key) == expected


# ------------------------------------------------------------------------------ label images


def test_palette_png_round_trip(tmp_path: Path) -> None:
    labels = np.zeros((5, 7), dtype=np.uint8)
    labels[1:3, 1:4] = 3
    labels[3:, 5:] = 7
    labels[0, 6] = VOID_LABEL
    path = tmp_path / "mask.png"
    write_palette_png(path, labels)
    np.testing.assert_array_equal(read_label_image(path), labels)
    with Image.open(path) as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()[: 256 * 3], dtype=np.uint8).reshape(256, 3)
    np.testing.assert_array_equal(palette, DAVIS_PALETTE)
    assert only_names(tmp_path) == ["mask.png"]  # no temporary file left beside it


def test_gray_binary_mask_is_one_object(tmp_path: Path) -> None:
    gray = np.zeros((4, 4), dtype=np.uint8)
    gray[1:3, 1:3] = 255
    Image.fromarray(gray, mode="L").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_label_image(tmp_path / "m.png"), gray // 255)


def test_gray_multi_id_mask_keeps_values(tmp_path: Path) -> None:
    gray = np.array([[0, 2, 2], [5, 5, 255]], dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_label_image(tmp_path / "m.png"), gray)


def test_colour_rgb_mask_reads_as_palette_ids(tmp_path: Path) -> None:
    """A DAVIS mask saved as RGB keeps its ids (more in tests/test_prompts.py)."""
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[1:3, 1:3] = (128, 0, 0)
    rgb[0, 3] = (0, 128, 0)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.png")
    expected = np.zeros((4, 4), np.uint8)
    expected[1:3, 1:3], expected[0, 3] = 1, 2
    np.testing.assert_array_equal(read_label_image(tmp_path / "colour.png"), expected)


def test_gray_valued_rgb_mask_reads_as_grayscale(tmp_path: Path) -> None:
    gray = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2), mode="RGB").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_label_image(tmp_path / "g.png"), gray // 255)


# ----------------------------------------------------------------------------------- videos


@pytest.mark.parametrize("codec", [None, "mpeg4"])
def test_video_round_trip(tmp_path: Path, codec: str | None) -> None:
    path = tmp_path / "clip.mp4"
    originals = [block_frame(i) for i in range(6)]
    with VideoWriter(path, fps=12, codec=codec) as writer:
        for image in originals:
            writer.write(image)
    assert only_names(tmp_path) == ["clip.mp4"]
    with open_frames(path) as source:
        assert (source.num_frames, source.size, source.fps, source.names) == (6, (H, W), 12.0, None)
        frames = list(source)
    assert [f.index for f in frames] == list(range(6))
    assert [f.name for f in frames] == [f"{i:05d}" for i in range(6)]
    for frame, original in zip(frames, originals, strict=True):
        assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
        diff = block_centres(frame.image).astype(int) - block_centres(original).astype(int)
        assert np.abs(diff).max() <= TOLERANCE


def test_video_iterates_again_from_the_start(tmp_path: Path) -> None:
    write_video(tmp_path / "clip.mp4", [block_frame(i) for i in range(3)])
    with open_frames(tmp_path / "clip.mp4") as source:
        first = [f.image for f in source]
        second = [f.image for f in source]
    assert len(first) == len(second) == 3
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_odd_size_is_padded_not_scaled(tmp_path: Path) -> None:
    image = np.zeros((7, 9, 3), dtype=np.uint8)
    image[4:] = 255  # white from row 4 down
    image[:, 6:] = 255  # and from column 6 right
    write_video(tmp_path / "odd.mp4", [image, image])
    with open_frames(tmp_path / "odd.mp4") as source:
        assert source.size == (8, 10)
        luma = next(iter(source)).image[..., 0].astype(int)
    # padding keeps the edges sharp where they were; rescaling 7x9 -> 8x10 would smear them
    assert luma[:4, :6].max() <= TOLERANCE
    assert luma[4:, :].min() >= 255 - TOLERANCE
    assert luma[:, 6:].min() >= 255 - TOLERANCE


def test_pad_to_even_repeats_the_last_row_and_column() -> None:
    image = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    padded = _pad_to_even(image)
    assert padded.shape == (4, 6, 3)
    np.testing.assert_array_equal(padded[:3, :5], image)
    np.testing.assert_array_equal(padded[3, :5], image[2])
    np.testing.assert_array_equal(padded[:3, 5], image[:, 4])
    even = image[:2, :4]
    assert _pad_to_even(even) is even


def test_video_display_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    image = np.zeros((H, W, 3), dtype=np.uint8)
    image[:16, :16] = 255  # white top-left corner
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.set_display_rotation(-90)  # shown turned 90 degrees clockwise, like a phone
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with open_frames(path) as source:
        assert source.size == (W, H)
        upright = next(iter(source)).image
    assert upright.shape == (W, H, 3)
    assert upright[:4, -4:].mean() > 200 and upright[:4, :4].mean() < 50  # now top-right


def test_random_bytes_video_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"noise\.mp4: cannot open video"):
        open_frames(path)


def _noisy_clip(path: Path, count: int = 12) -> bytes:
    rng = np.random.default_rng(1)
    write_video(path, [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(count)])
    return path.read_bytes()


def test_truncated_video_fails_mid_stream(tmp_path: Path) -> None:
    # VideoWriter puts the mp4 index first (faststart), so a cut file opens but runs out
    data = _noisy_clip(tmp_path / "full.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_frames(cut) as source:
        assert source.num_frames == 12
        with pytest.raises(InputError, match=r"cut\.mp4: corrupt video: decoding failed after"):
            list(source)


def test_truncated_video_without_index_fails_to_open(tmp_path: Path) -> None:
    data = _noisy_clip(tmp_path / "full.mp4")
    moov = data.find(b"moov")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: moov - 4])  # keep only what comes before the index
    with pytest.raises(InputError, match=r"cut\.mp4: "):
        list(open_frames(cut))


def test_file_without_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=8000)
        samples = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        samples.sample_rate = 8000
        for packet in [*stream.encode(samples), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(InputError, match=r"sound\.mp4: no video stream"):
        open_frames(path)


# ------------------------------------------------------------------------- folders and images


def test_folder_frames_in_natural_order(tmp_path: Path) -> None:
    for number in (10, 2, 1):
        Image.fromarray(block_frame(number % 7)).save(tmp_path / f"frame{number}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / ".hidden.png").write_bytes(b"")
    with open_frames(tmp_path) as source:
        assert source.names == ["frame1", "frame2", "frame10"]
        assert (source.num_frames, source.fps, source.size) == (3, 24.0, (H, W))
        frames = list(source)
    assert [(f.index, f.name) for f in frames] == [(0, "frame1"), (1, "frame2"), (2, "frame10")]
    np.testing.assert_array_equal(frames[2].image, block_frame(10 % 7))  # PNG is lossless


def test_single_image(tmp_path: Path) -> None:
    Image.fromarray(block_frame(1)).save(tmp_path / "still.jpg", quality=95)
    with open_frames(tmp_path / "still.jpg") as source:
        assert (source.num_frames, source.size, source.names) == (1, (H, W), ["still"])
        (frame,) = list(source)
    assert (frame.index, frame.name) == (0, "still")
    diff = block_centres(frame.image).astype(int) - block_centres(block_frame(1)).astype(int)
    assert np.abs(diff).max() <= TOLERANCE


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = np.zeros((H, W, 3), dtype=np.uint8)
    image[:16, :16] = 255  # white top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write
    Image.fromarray(image).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    with open_frames(tmp_path / "phone.jpg") as source:
        assert source.size == (W, H)
        upright = next(iter(source)).image
    assert upright.shape == (W, H, 3)
    assert upright[:4, -4:].mean() > 200 and upright[:4, :4].mean() < 50


def test_folder_with_mixed_sizes(tmp_path: Path) -> None:
    Image.fromarray(block_frame(0)).save(tmp_path / "00000.png")
    Image.fromarray(block_frame(0, 40, 60)).save(tmp_path / "00001.png")
    with pytest.raises(InputError, match=r"00001\.png: frame is 40x60 but the first frame"):
        open_frames(tmp_path)


def test_folder_with_clashing_names(tmp_path: Path) -> None:
    Image.fromarray(block_frame(0)).save(tmp_path / "a.png")
    Image.fromarray(block_frame(0)).save(tmp_path / "a.jpg")
    with pytest.raises(InputError, match="share a name"):
        open_frames(tmp_path)


def test_empty_folder_missing_path_and_bad_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \.jpg, \.jpeg or \.png frames"):
        open_frames(tmp_path)
    with pytest.raises(InputError, match=r"nowhere\.mp4: no such file"):
        open_frames(tmp_path / "nowhere.mp4")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    with pytest.raises(InputError, match=r"anim\.gif: unsupported file type '\.gif'"):
        open_frames(tmp_path / "anim.gif")


# ------------------------------------------------------------------------------------ masks


def frame_at(index: int, name: str | None = None, height: int = H, width: int = W) -> Frame:
    return Frame(index, name or f"{index:05d}", np.zeros((height, width, 3), dtype=np.uint8))


def square_mask(object_id: int = 1, height: int = H, width: int = W) -> np.ndarray:
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[10:20, 10:30] = object_id
    return labels


def test_single_mask_is_for_frame_zero(tmp_path: Path) -> None:
    write_palette_png(tmp_path / "first.png", square_mask(2))
    masks = open_masks(tmp_path / "first.png")
    assert masks.unused() == [tmp_path / "first.png"]
    np.testing.assert_array_equal(masks.mask_for(frame_at(0)), square_mask(2))
    assert masks.mask_for(frame_at(1)) is None
    assert masks.unused() == []


def test_mask_folder_matches_by_stem(tmp_path: Path) -> None:
    write_palette_png(tmp_path / "frame_a.png", square_mask(1))
    write_palette_png(tmp_path / "frame_c.png", square_mask(4))
    write_palette_png(tmp_path / "stray.png", square_mask(1))
    masks = open_masks(tmp_path)
    names = ["frame_a", "frame_b", "frame_c"]
    got = [masks.mask_for(frame_at(i, name)) for i, name in enumerate(names)]
    np.testing.assert_array_equal(got[0], square_mask(1))
    assert got[1] is None
    np.testing.assert_array_equal(got[2], square_mask(4))
    assert masks.unused() == [tmp_path / "stray.png"]
    with pytest.raises(InputError, match=r"1 mask\(s\) match no frame name or index: stray\.png"):
        open_masks(tmp_path).check_against(names)


def test_mask_folder_matches_by_index(tmp_path: Path) -> None:
    write_palette_png(tmp_path / "0.png", square_mask(1))
    write_palette_png(tmp_path / "12.png", square_mask(5))
    masks = open_masks(tmp_path)
    names = [f"img_{i}" for i in range(14)]
    assert masks.check_against(names) == {
        "img_0": tmp_path / "0.png",
        "img_12": tmp_path / "12.png",
    }
    found = {i: masks.mask_for(frame_at(i, name)) for i, name in enumerate(names)}
    assert [i for i, m in found.items() if m is not None] == [0, 12]
    assert found[12].max() == 5


def test_mask_stem_wins_over_index_for_one_based_names(tmp_path: Path) -> None:
    # frames 00001, 00002, 00003 (1-based); masks named after frames 00001 and 00003
    write_palette_png(tmp_path / "00001.png", square_mask(1))
    write_palette_png(tmp_path / "00003.png", square_mask(2))
    names = ["00001", "00002", "00003"]
    streamed = open_masks(tmp_path)
    got = [streamed.mask_for(frame_at(i, name)) for i, name in enumerate(names)]
    assert [None if m is None else int(m.max()) for m in got] == [1, None, 2]
    planned = open_masks(tmp_path).check_against(names)
    assert planned == {"00001": tmp_path / "00001.png", "00003": tmp_path / "00003.png"}


def test_mask_planned_by_name_is_not_taken_by_index(tmp_path: Path) -> None:
    # frames listed in plain string order: "2.png" belongs to frame "2", not to index 2 ("12")
    write_palette_png(tmp_path / "2.png", square_mask(1))
    names = ["10", "11", "12", "2"]
    masks = open_masks(tmp_path)
    assert masks.check_against(names) == {"2": tmp_path / "2.png"}
    assert masks.mask_for(frame_at(2, "12")) is None
    assert masks.mask_for(frame_at(3, "2")) is not None


def test_two_masks_for_one_frame_is_an_error(tmp_path: Path) -> None:
    write_palette_png(tmp_path / "00003.png", square_mask(1))
    write_palette_png(tmp_path / "3.png", square_mask(1))
    masks = open_masks(tmp_path)
    with pytest.raises(InputError, match=r"00003\.png and 3\.png both match frame 00003"):
        masks.mask_for(frame_at(3))


def test_mask_size_mismatch(tmp_path: Path) -> None:
    write_palette_png(tmp_path / "m.png", square_mask(1, 40, 60))
    with pytest.raises(InputError, match=r"m\.png: mask is 40x60 but frames are 48x64$"):
        open_masks(tmp_path / "m.png").mask_for(frame_at(0))


def test_first_mask_without_object(tmp_path: Path) -> None:
    labels = np.zeros((H, W), dtype=np.uint8)
    labels[:5] = VOID_LABEL  # void is not an object
    write_palette_png(tmp_path / "empty.png", labels)
    with pytest.raises(InputError, match=r"empty\.png: no object in mask"):
        open_masks(tmp_path / "empty.png").mask_for(frame_at(0))


def test_open_masks_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \.png masks in folder"):
        open_masks(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        open_masks(tmp_path / "missing.png")
    (tmp_path / "mask.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"mask\.jpg: masks must be PNG"):
        open_masks(tmp_path / "mask.jpg")


# --------------------------------------------------------------------------------- overlays


def test_blend_labels_tints_objects_only() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[5:15, 5:15] = 3
    labels[0:4, 20:30] = VOID_LABEL
    out = blend_labels(image, labels, alpha=0.5)
    untouched = (labels == 0) | (labels == VOID_LABEL)
    np.testing.assert_array_equal(out[untouched], image[untouched])
    # interior pixel: halfway between the pixel and the palette colour (128, 128, 0)
    expected = np.rint(0.5 * image[10, 10].astype(float) + 0.5 * np.array([128, 128, 0]))
    np.testing.assert_array_equal(out[10, 10], expected)
    # edge pixels of the object: the palette colour at half brightness
    for y, x in [(5, 5), (5, 10), (14, 10), (10, 14)]:
        assert out[y, x].tolist() == [64, 64, 0]
    # the contour is one pixel thick at this size: the next pixel in is blended, not outlined
    expected = np.rint(0.5 * image[6, 6].astype(float) + 0.5 * np.array([128, 128, 0]))
    np.testing.assert_array_equal(out[6, 6], expected)


def test_blend_labels_alpha_one_gives_palette_colour() -> None:
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    labels = np.zeros((8, 8), dtype=np.uint8)
    labels[2:6, 2:6] = 1
    out = blend_labels(image, labels, alpha=1.0)
    assert out[3, 3].tolist() == [128, 0, 0]


def test_overlay_writer_writes_a_decodable_video(tmp_path: Path) -> None:
    path = tmp_path / "overlay.mp4"
    labels = np.zeros((H, W), dtype=np.uint8)
    labels[:, : W // 2] = 2  # left block tinted green (0, 128, 0)
    with OverlayWriter(path, fps=10, alpha=0.5) as writer:
        for i in range(4):
            writer.write(frame_at(i)._replace(image=block_frame(0)), labels)
    assert writer.num_frames == 4
    with open_frames(path) as source:
        frames = list(source)
    assert len(frames) == 4
    left, right = block_centres(frames[-1].image).astype(int)
    expected_left = np.rint(0.5 * block_centres(block_frame(0))[0] + 0.5 * np.array([0, 128, 0]))
    assert np.abs(left - expected_left).max() <= TOLERANCE
    assert np.abs(right - block_centres(block_frame(0))[1]).max() <= TOLERANCE


def test_writer_leaves_nothing_behind_on_error(tmp_path: Path) -> None:
    path = tmp_path / "overlay.mp4"
    with pytest.raises(KeyError), OverlayWriter(path) as writer:
        writer.write(block_frame(0), square_mask())
        raise KeyError("simulated crash")
    assert only_names(tmp_path) == []


def test_writer_refuses_empty_video_and_bad_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames were written"), VideoWriter(tmp_path / "a.mp4"):
        pass
    assert only_names(tmp_path) == []
    with pytest.raises(InputError, match=r"a\.gif: cannot write video"):
        VideoWriter(tmp_path / "a.gif")


def test_y4m_round_trips_through_the_video_reader(tmp_path):
    """write_y4m, read back by open_frames (PyAV): frames constant over each 2x2 block (so
    4:2:0 loses nothing) come back within the rounding of RGB -> limited-range YUV -> RGB."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (3, 8, 12, 3), dtype=np.uint8)
    frames = blocks.repeat(2, axis=1).repeat(2, axis=2)  # (3, 16, 24, 3), 2x2-constant
    path = tmp_path / "clip.y4m"
    assert write_y4m(path, frames, fps=12) == 3
    assert path.read_bytes().startswith(b"YUV4MPEG2 W24 H16 F12:1 Ip A1:1 C420jpeg\n")
    with open_frames(path) as source:
        read = np.stack([frame.image for frame in source])
    assert read.shape == frames.shape
    assert np.abs(read.astype(int) - frames.astype(int)).max() <= 4  # 3 here; kernels differ
    with pytest.raises(InputError, match="even sides"):
        write_y4m(tmp_path / "odd.y4m", [np.zeros((15, 24, 3), np.uint8)])
    assert not (tmp_path / "odd.y4m").exists()
