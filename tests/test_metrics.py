"""J, F and the DAVIS statistics against hand-computed values and a naive reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobilevos.metrics import (
    boundary_f,
    boundary_map,
    boundary_radius,
    db_statistics,
    decay_bins,
    disk,
    jaccard,
)


def _mask(shape: tuple[int, int], *pixels: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for y, x in pixels:
        out[y, x] = True
    return out


def _naive_boundary(mask: np.ndarray) -> np.ndarray:
    """seg2bmap written out pixel by pixel: compare with right/below/diagonal neighbours."""
    height, width = mask.shape

    def at(y: int, x: int) -> bool:
        return bool(mask[y, x]) if y < height and x < width else False

    out = np.zeros_like(mask, dtype=bool)
    for y in range(height):
        for x in range(width):
            if y == height - 1 and x == width - 1:
                continue
            if y == height - 1:
                out[y, x] = at(y, x) != at(y, x + 1)
            elif x == width - 1:
                out[y, x] = at(y, x) != at(y + 1, x)
            else:
                neighbours = ((0, 1), (1, 0), (1, 1))
                out[y, x] = any(at(y, x) != at(y + dy, x + dx) for dy, dx in neighbours)
    return out


def _naive_f(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    """Boundary F with an explicit disk dilation loop, as the toolkit's definition reads."""
    pb, gb = _naive_boundary(pred), _naive_boundary(gt)

    def dilate(b: np.ndarray) -> np.ndarray:
        out = np.zeros_like(b)
        for y, x in zip(*np.nonzero(b), strict=True):
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    yy, xx = y + dy, x + dx
                    inside = 0 <= yy < b.shape[0] and 0 <= xx < b.shape[1]
                    if dy * dy + dx * dx <= radius * radius and inside:
                        out[yy, xx] = True
        return out

    n_p, n_g = pb.sum(), gb.sum()
    if n_p == 0 or n_g == 0:
        return 1.0 if n_p == n_g else 0.0
    precision = (pb & dilate(gb)).sum() / n_p
    recall = (gb & dilate(pb)).sum() / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


class TestJaccard:
    def test_partial_overlap(self) -> None:
        pred, gt = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
        pred[0:2, 0:2] = True
        gt[0:2, 1:3] = True
        assert jaccard(pred, gt) == pytest.approx(2 / 6)

    def test_both_empty_is_one_and_one_empty_is_zero(self) -> None:
        empty = np.zeros((3, 3), bool)
        assert jaccard(empty, empty) == 1.0
        assert jaccard(empty, _mask((3, 3), (1, 1))) == 0.0

    def test_one_pixel_object(self) -> None:
        gt = _mask((5, 5), (2, 2))
        assert jaccard(gt, gt) == 1.0
        assert jaccard(_mask((5, 5), (2, 2), (2, 3)), gt) == 0.5

    def test_void_pixels_are_ignored(self) -> None:
        gt, pred, void = np.zeros((4, 4), bool), np.zeros((4, 4), bool), np.zeros((4, 4), bool)
        gt[0:2, 0:2] = True
        pred[0:2, 0:3] = True
        void[:, 2] = True
        assert jaccard(pred, gt) == pytest.approx(4 / 6)
        assert jaccard(pred, gt, void) == 1.0

    def test_stack_gives_one_value_per_frame(self) -> None:
        pred = np.stack([np.eye(3, dtype=bool), np.zeros((3, 3), bool)])
        gt = np.stack([np.ones((3, 3), bool), np.zeros((3, 3), bool)])
        np.testing.assert_allclose(jaccard(pred, gt), [3 / 9, 1.0])

    def test_shape_mismatch_raises(self) -> None:
        with pytest.raises(ValueError, match="shape"):
            jaccard(np.zeros((2, 3)), np.zeros((3, 2)))


class TestBoundaryMap:
    def test_one_pixel_object_marks_a_two_by_two_block(self) -> None:
        expected = _mask((5, 5), (1, 1), (1, 2), (2, 1), (2, 2))
        np.testing.assert_array_equal(boundary_map(_mask((5, 5), (2, 2))), expected)

    def test_square_gives_ring_offset_towards_origin(self) -> None:
        mask = np.zeros((5, 5), bool)
        mask[1:3, 1:3] = True
        expected = np.zeros((5, 5), bool)
        expected[0:3, 0:3] = True
        expected[1, 1] = False
        np.testing.assert_array_equal(boundary_map(mask), expected)

    def test_object_touching_bottom_right_border(self) -> None:
        mask = np.zeros((5, 5), bool)
        mask[3:, 3:] = True
        expected = _mask((5, 5), (2, 2), (2, 3), (2, 4), (3, 2), (4, 2))
        np.testing.assert_array_equal(boundary_map(mask), expected)

    def test_object_touching_top_left_border(self) -> None:
        mask = np.zeros((5, 5), bool)
        mask[:2, :2] = True
        np.testing.assert_array_equal(boundary_map(mask), _mask((5, 5), (0, 1), (1, 0), (1, 1)))

    def test_full_frame_has_no_boundary(self) -> None:
        assert not boundary_map(np.ones((4, 6), bool)).any()

    def test_matches_naive_reference_and_batches(self) -> None:
        rng = np.random.default_rng(0)
        masks = rng.random((3, 7, 9)) < 0.4
        batched = boundary_map(masks)
        for mask, got in zip(masks, batched, strict=True):
            np.testing.assert_array_equal(got, _naive_boundary(mask))


class TestBoundaryF:
    def test_radius_and_disk(self) -> None:
        assert boundary_radius((480, 854)) == 8
        assert boundary_radius((10, 10)) == 1
        assert boundary_radius((10, 10), bound_th=3) == 3
        np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
        expected = [
            [0, 0, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 0, 0],
        ]
        np.testing.assert_array_equal(disk(2), expected)

    def test_one_pixel_shifts_with_radius_one(self) -> None:
        gt = _mask((10, 10), (4, 4))  # 10x10: radius ceil(0.008 * 14.1) = 1
        assert boundary_f(_mask((10, 10), (4, 5)), gt) == 1.0
        assert boundary_f(_mask((10, 10), (4, 6)), gt) == pytest.approx(0.5)
        # Diagonal neighbour at distance sqrt(2) is outside the disk (a square would match it).
        assert boundary_f(_mask((10, 10), (5, 5)), gt) == pytest.approx(0.75)

    def test_empty_rules(self) -> None:
        empty = np.zeros((10, 10), bool)
        obj = _mask((10, 10), (4, 4))
        assert boundary_f(empty, empty) == 1.0
        assert boundary_f(empty, obj) == 0.0
        assert boundary_f(obj, empty) == 0.0

    def test_box_shifted_by_two(self) -> None:
        gt, pred = np.zeros((30, 40), bool), np.zeros((30, 40), bool)
        gt[10:18, 10:18] = True
        pred[10:18, 12:20] = True
        # Rings of 32 pixels; 18 of each lie within distance 1 of the other (worked by hand).
        assert boundary_f(pred, gt) == pytest.approx(18 / 32)
        assert boundary_f(pred, gt, bound_th=2) == 1.0

    def test_void_removed_before_boundaries(self) -> None:
        gt, pred, void = (np.zeros((20, 20), bool) for _ in range(3))
        gt[5:10, 5:10] = True
        pred[2:10, 5:10] = True
        void[2:5, :] = True
        assert boundary_f(pred, gt) < 1.0
        assert boundary_f(pred, gt, void) == 1.0

    def test_matches_naive_reference(self) -> None:
        rng = np.random.default_rng(1)
        for trial in range(6):
            gt = rng.random((12, 15)) < 0.3
            pred = np.roll(gt, trial % 3, axis=1) ^ (rng.random((12, 15)) < 0.1)
            for bound_th in (0.008, 2):
                radius = int(boundary_radius(gt.shape, bound_th))
                assert boundary_f(pred, gt, bound_th=bound_th) == pytest.approx(
                    _naive_f(pred, gt, radius), abs=1e-12
                )

    def test_stack(self) -> None:
        gt = np.stack([_mask((10, 10), (4, 4))] * 2)
        pred = np.stack([_mask((10, 10), (4, 4)), _mask((10, 10), (4, 6))])
        np.testing.assert_allclose(boundary_f(pred, gt), [1.0, 0.5])


class TestStatistics:
    def test_mean_recall_decay_by_hand(self) -> None:
        stats = db_statistics(np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float))
        assert stats.mean == 0.5
        assert stats.recall == 0.5
        assert stats.decay == 1.0  # bins [0:3] and [5:8]

    def test_recall_is_strictly_above_half(self) -> None:
        stats = db_statistics(np.array([0.9, 0.8, 0.5, 0.3, 0.1]))
        assert stats.mean == pytest.approx(0.52)
        assert stats.recall == pytest.approx(0.4)
        assert stats.decay == pytest.approx(0.85 - 0.2)  # bins [0:2] and [3:5]

    def test_bins_overlap_and_round_half_up(self) -> None:
        # linspace(1, 8, 5) = 1, 2.75, 4.5, 6.25, 8: 4.5 rounds up (the toolkit adds 1e-10).
        assert decay_bins(8) == [slice(0, 3), slice(2, 5), slice(4, 6), slice(5, 8)]
        assert decay_bins(10) == [slice(0, 3), slice(2, 6), slice(5, 8), slice(7, 10)]
        assert decay_bins(1) == [slice(0, 1)] * 4

    def test_nan_frames(self) -> None:
        stats = db_statistics(np.array([1.0, math.nan, 0.0, 0.0]))
        assert stats.mean == pytest.approx(1 / 3)
        assert stats.recall == 0.25
        assert db_statistics(np.array([])).mean != db_statistics(np.array([])).mean  # NaN
