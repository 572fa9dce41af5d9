"""Tests of mobilevos.losses against hand-computed values, naive references and invariants."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mobilevos.errors import ConfigError
from mobilevos.losses import (
    BootstrappedCE,
    LossWeights,
    boundary_band,
    combine_losses,
    gather_embeddings,
    logit_distillation_loss,
    one_hot_labels,
    representation_loss,
    sample_pixels,
)

V = 255  # void

# --------------------------------------------------------------------------------------------
# boundary_band
# --------------------------------------------------------------------------------------------

# Hand-drawn 6x6 labels: object 1 (2x2 block), object 2 (corner L), one void pixel at (3, 4).
LABELS_6X6 = [
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 0, 0, 0],
    [0, 1, 1, 0, 0, 0],
    [0, 0, 0, 0, V, 0],
    [0, 0, 0, 0, 0, 2],
    [0, 0, 0, 0, 2, 2],
]
# Band of width 1 (Chebyshev: the 8 neighbours), worked out by hand. (0, 0) is in it through its
# diagonal neighbour (1, 1); (2, 4) is not although it touches the void pixel; the void pixel
# itself is not; (3, 5) is, through (4, 5).
BAND_6X6_W1 = [
    [1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 0, 1],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
]


def test_boundary_band_hand_drawn_6x6():
    labels = torch.tensor([LABELS_6X6])
    band = boundary_band(labels, 1)
    assert band.dtype == torch.bool
    assert band[0].int().tolist() == BAND_6X6_W1
    assert not boundary_band(labels, 0).any()


def _naive_band(labels: torch.Tensor, width: int) -> torch.Tensor:
    b, h, w = labels.shape
    out = torch.zeros(b, h, w, dtype=torch.bool)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                own = int(labels[n, i, j])
                if own == V:
                    continue
                window = labels[
                    n, max(0, i - width) : i + width + 1, max(0, j - width) : j + width + 1
                ]
                out[n, i, j] = bool(((window != V) & (window != own)).any())
    return out


@pytest.mark.parametrize("width", [1, 2, 3])
def test_boundary_band_matches_naive_reference(width):
    g = torch.Generator().manual_seed(width)
    labels = torch.randint(0, 3, (2, 9, 7), generator=g)
    labels[torch.rand(2, 9, 7, generator=g) < 0.15] = V
    labels[1, :, :4] = 0  # a uniform region, so not every pixel is in the band
    assert torch.equal(boundary_band(labels, width), _naive_band(labels, width))


def test_boundary_band_single_label_and_bad_width():
    assert not boundary_band(torch.full((1, 5, 5), 3), 2).any()
    with pytest.raises(ConfigError):
        boundary_band(torch.zeros(1, 4, 4, dtype=torch.long), -1)
    with pytest.raises(ValueError):
        boundary_band(torch.zeros(1, 4, 4), 1)  # float labels


# --------------------------------------------------------------------------------------------
# sample_pixels, gather_embeddings, one_hot_labels
# --------------------------------------------------------------------------------------------


def _two_region_labels() -> torch.Tensor:
    """(2, 16, 16): frame 0 has a square object and a void stripe, frame 1 one label only."""
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[0, 4:10, 4:10] = 1
    labels[0, :, 13:] = V
    labels[1, :, :8] = V
    return labels


def test_sample_pixels_boundary_fraction_and_no_void():
    labels = _two_region_labels()
    g = torch.Generator().manual_seed(0)
    idx = sample_pixels(labels, num_samples=40, boundary_fraction=0.75, band_width=1, generator=g)
    assert idx.shape == (2, 40) and idx.dtype == torch.long
    band = boundary_band(labels, 1).flatten(1)
    valid = (labels != V).flatten(1)
    # Frame 0: the first 30 samples are boundary pixels, distinct (the band has 48 > 30 pixels).
    assert band[0].sum() == 48  # 20 object pixels on its rim + a 28-pixel ring outside it
    assert band[0][idx[0, :30]].all()
    assert idx[0, :30].unique().numel() == 30
    assert valid[0][idx[0]].all()
    # Frame 1 has an empty band: all 40 are uniform over its 128 non-void pixels, distinct.
    assert valid[1][idx[1]].all()
    assert idx[1].unique().numel() == 40


def test_sample_pixels_uniform_part_is_spread():
    # The 25% uniform part must reach pixels far from the boundary.
    labels = _two_region_labels()[:1]
    g = torch.Generator().manual_seed(1)
    idx = sample_pixels(labels, num_samples=400, boundary_fraction=0.75, band_width=1, generator=g)
    band = boundary_band(labels, 1).flatten(1)[0]
    assert band[idx[0, :300]].all()
    off_band = (~band[idx[0, 300:]]).sum()
    assert off_band > 40  # about 100 * 160 / 208 ~ 77 expected


def test_sample_pixels_replacement_when_band_is_small():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 0, 0] = 1  # band of width 1: the pixel and its 3 neighbours
    g = torch.Generator().manual_seed(2)
    idx = sample_pixels(labels, num_samples=20, boundary_fraction=0.5, band_width=1, generator=g)
    assert set(idx[0, :10].tolist()) <= {0, 1, 8, 9}
    # 10 uniform draws from 64 pixels without replacement.
    assert idx[0, 10:].unique().numel() == 10


def test_sample_pixels_is_deterministic_with_generator():
    labels = _two_region_labels()

    def draw(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return sample_pixels(labels, num_samples=32, band_width=1, generator=g)

    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


def test_sample_pixels_rejects_all_void_and_bad_arguments():
    labels = _two_region_labels()
    labels[1] = V
    with pytest.raises(ValueError, match="frame 1"):
        sample_pixels(labels, num_samples=8)
    with pytest.raises(ConfigError):
        sample_pixels(labels[:1], num_samples=8, boundary_fraction=1.5)
    with pytest.raises(ConfigError):
        sample_pixels(labels[:1], num_samples=0)


def test_gather_embeddings_and_one_hot_labels():
    features = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    index = torch.tensor([[3, 0], [1, 1]])
    emb = gather_embeddings(features, index)
    assert emb.shape == (2, 2, 3)
    # features[b, c, i, j] = 12b + 4c + 2i + j; flat index f = 2i + j.
    assert emb[0].tolist() == [[3, 7, 11], [0, 4, 8]]
    assert emb[1].tolist() == [[13, 17, 21], [13, 17, 21]]

    labels = torch.tensor([[[0, 2], [V, 1]], [[1, 1], [0, 0]]])
    onehot = one_hot_labels(labels, torch.tensor([[1, 2, 3], [0, 2, 2]]), num_classes=3)
    assert onehot.dtype == torch.float32
    assert onehot[0].tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 0]]  # void row is all zero
    assert onehot[1].tolist() == [[0, 1, 0], [1, 0, 0], [1, 0, 0]]
    with pytest.raises(ValueError):
        one_hot_labels(labels, torch.tensor([[1, 1], [0, 0]]), num_classes=2)


# --------------------------------------------------------------------------------------------
# representation_loss
# --------------------------------------------------------------------------------------------

# N = 3 student embeddings in 2-D, given unnormalised; normalised they are
#   z1 = (1, 0), z2 = (0, 1), z3 = (1, 1)/sqrt(2),   a = 1/sqrt(2):
#   C_s = [[1, 0, a], [0, 1, a], [a, a, 1]],   ||C_s||² = 3 + 4 a² = 5.
# Labels (0, 1, 0):  Y Yᵀ = [[1, 0, 1], [0, 1, 0], [1, 0, 1]].
# Teacher (1, 0), (2, 0), (0, 3):  C_t = [[1, 1, 0], [1, 1, 0], [0, 0, 1]].
# ω = 0: C_s ⊙ YYᵀ keeps the diagonal and (1,3),(3,1) = a:  ||·||² = 3 + 2 a² = 4.
# ω = 1: C_s ⊙ C_t keeps the diagonal only ((1,2) of C_s is 0):  ||·||² = 3.
# ω = ½: T = [[1, ½, ½], [½, 1, 0], [½, 0, 1]];  C_s ⊙ T: diagonal and (1,3),(3,1) = a/2:
#        ||·||² = 3 + 2 a²/4 = 3.25.
# L = (1/3)(log2 5 − log2 ||C_s ⊙ T||²).
STUDENT_3 = torch.tensor([[[2.0, 0.0], [0.0, 0.5], [3.0, 3.0]]])
LABELS_3 = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
TEACHER_3 = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]])


@pytest.mark.parametrize(
    ("omega", "kept_norm"), [(0.0, 4.0), (1.0, 3.0), (0.5, 3.25), (0.25, 3.0 + 2 * 0.5 * 0.75**2)]
)
def test_representation_loss_hand_computed(omega, kept_norm):
    # ω = ¼: T(1,3) = ¾, T(1,2) = ¼ but C_s(1,2) = 0, T(2,3) = 0:  ||·||² = 3 + 2 a² (¾)².
    loss = representation_loss(STUDENT_3, LABELS_3, TEACHER_3, omega=omega)
    expected = (math.log2(5.0) - math.log2(kept_norm)) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_representation_loss_averages_frames():
    # Frame 2 is orthogonal across labels, so its loss is 0 and the batch mean is half frame 1's.
    student = torch.cat([STUDENT_3, torch.tensor([[[1.0, 0.0], [0.0, 2.0], [5.0, 0.0]]])])
    labels = torch.cat([LABELS_3, LABELS_3])
    loss = representation_loss(student, labels, omega=0.0)
    assert loss.item() == pytest.approx((math.log2(5.0) - 2.0) / 3 / 2, abs=1e-6)


def _random_repr_inputs(seed: int, b: int = 2, n: int = 24, k: int = 3, dim: int = 8):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(b, n, dim, generator=g)
    teacher = torch.randn(b, n, 5, generator=g)
    labels = F.one_hot(torch.randint(0, k + 1, (b, n), generator=g), k + 1).float()
    return student, labels, teacher


@pytest.mark.parametrize("omega", [0.0, 0.3, 1.0])
def test_representation_loss_nonnegative_on_random_inputs(omega):
    for seed in range(5):
        student, labels, teacher = _random_repr_inputs(seed)
        assert representation_loss(student, labels, teacher, omega=omega).item() >= 0.0


def test_representation_loss_zero_iff_labels_orthogonal_at_omega_zero():
    # Pixels of class 0 along e1/e2, class 1 along e3, class 2 along e4: cross-label dot = 0.
    student = torch.tensor(
        [[[1.0, 2, 0, 0], [3, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 7], [0, 0, 5, 0]]]
    )
    labels = F.one_hot(torch.tensor([[0, 0, 1, 2, 1]]), 3).float()
    assert representation_loss(student, labels, omega=0.0).item() == 0.0
    tilted = student.clone()
    tilted[0, 3, 0] = 0.1  # class-2 pixel now correlates with class 0
    assert representation_loss(tilted, labels, omega=0.0).item() > 0.0


def test_representation_loss_scale_invariant():
    student, labels, teacher = _random_repr_inputs(7)
    base = representation_loss(student, labels, teacher, omega=0.5)
    scaled = representation_loss(student * 37.0, labels, teacher * 1e-3, omega=0.5)
    assert scaled.item() == pytest.approx(base.item(), rel=1e-5)


def test_representation_loss_depends_on_labels_only_at_0_and_teacher_only_at_1():
    student, labels, teacher = _random_repr_inputs(8)
    _, other_labels, other_teacher = _random_repr_inputs(9)
    at0 = representation_loss(student, labels, teacher, omega=0.0)
    assert representation_loss(student, labels, other_teacher, omega=0.0).item() == at0.item()
    assert representation_loss(student, labels, None, omega=0.0).item() == at0.item()
    assert representation_loss(student, other_labels, teacher, omega=0.0).item() != at0.item()
    at1 = representation_loss(student, labels, teacher, omega=1.0)
    assert representation_loss(student, other_labels, teacher, omega=1.0).item() == at1.item()
    assert representation_loss(student, None, teacher, omega=1.0).item() == at1.item()
    assert representation_loss(student, labels, other_teacher, omega=1.0).item() != at1.item()


def test_representation_loss_requires_teacher_and_valid_omega():
    student, labels, _ = _random_repr_inputs(10)
    with pytest.raises(ConfigError, match="teacher"):
        representation_loss(student, labels, None, omega=0.5)
    with pytest.raises(ConfigError):
        representation_loss(student, labels, None, omega=-0.1)
    with pytest.raises(ValueError):
        representation_loss(student, labels[:, :5], None, omega=0.0)


@pytest.mark.parametrize("omega", [0.0, 0.5])
def test_representation_loss_decreases_under_adam_and_grads_flow(omega):
    # A toy student: a linear map of fixed random features (16-D, 32 pixels of 4 classes). The
    # random teacher and labels cannot be matched exactly, but the loss must fall clearly
    # (measured: ω=0 0.045 -> 0.021, ω=½ 0.068 -> 0.051 in 25 steps).
    torch.manual_seed(0)
    features, labels, teacher = _random_repr_inputs(11, b=2, n=32, dim=16)
    projection = torch.nn.Linear(16, 6)
    optimiser = torch.optim.Adam(projection.parameters(), lr=0.05)
    teacher.requires_grad_(True)
    losses = []
    for _ in range(25):
        loss = representation_loss(projection(features), labels, teacher, omega=omega)
        optimiser.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in projection.parameters())
        losses.append(loss.item())
        optimiser.step()
    assert teacher.grad is None  # the teacher is a fixed target
    assert all(b < a for a, b in zip(losses[:-5:5], losses[5::5], strict=True))
    assert losses[-1] < 0.85 * losses[0]


def test_representation_loss_finite_for_zero_features():
    student = torch.zeros(1, 4, 3, requires_grad=True)
    labels = F.one_hot(torch.tensor([[0, 1, 0, 1]]), 2).float()
    loss = representation_loss(student, labels, omega=0.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(student.grad).all()


def test_representation_loss_runs_in_fp32_for_half_inputs():
    # Nearly parallel embeddings: ||C_s||² ~ 512² = 262,144 overflows float16 (max 65,504).
    g = torch.Generator().manual_seed(12)
    student = 1.0 + 0.05 * torch.randn(1, 512, 16, generator=g)
    labels = F.one_hot(torch.randint(0, 2, (1, 512), generator=g), 2).float()
    reference = representation_loss(student.half().float(), labels, omega=0.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = representation_loss(student.half(), labels.half(), omega=0.0)
    assert half.dtype == torch.float32
    assert torch.isfinite(half) and reference.item() > 0
    assert half.item() == pytest.approx(reference.item(), rel=1e-5)


# --------------------------------------------------------------------------------------------
# logit_distillation_loss
# --------------------------------------------------------------------------------------------


def _band_labels() -> torch.Tensor:
    """(1, 1, 4) labels [0, 0, 1, 1]: with width 1 the band is the middle two pixels."""
    return torch.tensor([[[0, 0, 1, 1]]])


def test_logit_distillation_hand_computed():
    # Middle pixels: teacher (0, 0) -> p = (½, ½); student (ln 3, 0) -> q = (¾, ¼);
    # KL(p‖q) = ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3). Pixel 2 equal logits -> KL 0.
    # Off-band pixels 0 and 3 are wildly different and must not count.
    teacher = torch.tensor([[[[5.0, 0, 0, -4]], [[-5.0, 0, 0, 9]]]])
    student = torch.tensor([[[[-3.0, math.log(3.0), 0, 2]], [[8.0, 0, 0, 0]]]])
    loss = logit_distillation_loss(student, teacher, _band_labels(), band_width=1)
    assert loss.item() == pytest.approx(0.5 * math.log(4 / 3) / 2, abs=1e-6)


def test_logit_distillation_zero_when_equal_and_ignores_off_band():
    g = torch.Generator().manual_seed(3)
    labels = torch.zeros(2, 12, 12, dtype=torch.long)
    labels[:, 3:7, 3:7] = 1
    labels[1, 8:, 8:] = V
    logits = torch.randn(2, 2, 12, 12, generator=g)
    assert logit_distillation_loss(logits, logits.clone(), labels, band_width=2).item() == 0.0
    student = torch.randn(2, 2, 12, 12, generator=g)
    base = logit_distillation_loss(student, logits, labels, band_width=2)
    assert base.item() > 0
    off = ~boundary_band(labels, 2)
    changed = student.clone()
    changed[off[:, None].expand_as(changed)] = 50.0 * torch.randn(int(off.sum()) * 2, generator=g)
    assert logit_distillation_loss(changed, logits, labels, band_width=2).item() == base.item()


def _naive_kl_mean(student, teacher, mask, tau):
    p = torch.softmax(teacher / tau, dim=1)
    q = torch.softmax(student / tau, dim=1)
    kl = (p * (p.log() - q.log())).sum(1)
    return tau**2 * kl[mask].mean()


def test_logit_distillation_temperature():
    g = torch.Generator().manual_seed(4)
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[0, :, 3:] = 2
    student, teacher = torch.randn(2, 1, 3, 6, 6, generator=g)
    band = boundary_band(labels, 1)
    for tau in (0.5, 1.0, 4.0):
        loss = logit_distillation_loss(student, teacher, labels, band_width=1, temperature=tau)
        assert loss.item() == pytest.approx(
            _naive_kl_mean(student, teacher, band, tau).item(), rel=1e-5
        )
    # τ²·KL has a finite limit as τ grows: ½·(1/C)·Σ_c (d_c − mean d)², d = teacher − student.
    # In float64: at τ = 1000 the fp32 log-probabilities would lose the 1e-3 differences.
    student, teacher = student.double(), teacher.double()
    d = (teacher - student)[0]
    limit = (0.5 / 3 * (d - d.mean(0)).pow(2).sum(0))[band[0]].mean()
    big = logit_distillation_loss(student, teacher, labels, band_width=1, temperature=1000.0)
    assert big.item() == pytest.approx(limit.item(), rel=1e-2)
    assert big.item() != pytest.approx(limit.item(), rel=1e-6)  # only a limit, not exact
    with pytest.raises(ConfigError):
        logit_distillation_loss(student, teacher, labels, temperature=0.0)


def test_logit_distillation_empty_band_and_grads():
    student = torch.randn(1, 2, 5, 5, requires_grad=True)
    teacher = torch.randn(1, 2, 5, 5, requires_grad=True)
    empty = logit_distillation_loss(student, teacher, torch.ones(1, 5, 5, dtype=torch.long))
    assert empty.item() == 0.0
    empty.backward()
    assert torch.equal(student.grad, torch.zeros_like(student))
    labels = torch.zeros(1, 5, 5, dtype=torch.long)
    labels[0, 2:, 2:] = 1
    logit_distillation_loss(student, teacher, labels, band_width=1).backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert teacher.grad is None


# --------------------------------------------------------------------------------------------
# BootstrappedCE
# --------------------------------------------------------------------------------------------


def _seg_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 5, 4, generator=g)
    target = torch.randint(0, 3, (2, 5, 4), generator=g)
    target[0, 0, :] = V
    return logits, target


def _naive_pixel_ce(logits, target):
    """Per-pixel −log softmax at the target, for non-void pixels, by explicit loops."""
    values = []
    for b in range(target.shape[0]):
        for i in range(target.shape[1]):
            for j in range(target.shape[2]):
                t = int(target[b, i, j])
                if t == V:
                    continue
                z = logits[b, :, i, j]
                values.append(float(torch.logsumexp(z, 0) - z[t]))
    return values


def test_bootstrapped_ce_schedule():
    ce = BootstrappedCE()
    assert ce.fraction(0) == 1.0
    assert ce.fraction(19_999) == 1.0
    assert ce.fraction(20_000) == 1.0
    assert ce.fraction(45_000) == pytest.approx(0.575)  # halfway: (1 + 0.15) / 2
    assert ce.fraction(70_000) == pytest.approx(0.15)
    assert ce.fraction(10**6) == pytest.approx(0.15)
    assert BootstrappedCE(start_warm=5, end_warm=5, top_p=0.3).fraction(5) == 0.3
    with pytest.raises(ConfigError):
        BootstrappedCE(top_p=0.0)
    with pytest.raises(ConfigError):
        BootstrappedCE(start_warm=10, end_warm=5)


def test_bootstrapped_ce_plain_before_start_warm():
    logits, target = _seg_inputs()
    loss, p = BootstrappedCE()(logits, target, iteration=100)
    assert p == 1.0
    expected = F.cross_entropy(logits, target, ignore_index=V)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    naive = _naive_pixel_ce(logits, target)
    assert loss.item() == pytest.approx(sum(naive) / len(naive), rel=1e-5)


@pytest.mark.parametrize("iteration", [45_000, 70_000, 90_000])
def test_bootstrapped_ce_hardest_pixels(iteration):
    logits, target = _seg_inputs(1)
    ce = BootstrappedCE()
    loss, p = ce(logits, target, iteration=iteration)
    naive = sorted(_naive_pixel_ce(logits, target), reverse=True)  # 36 non-void pixels
    k = max(1, round(p * len(naive)))  # 45k: round(0.575 * 36) = 21; after: round(5.4) = 5
    assert k == (21 if iteration == 45_000 else 5)
    assert loss.item() == pytest.approx(sum(naive[:k]) / k, rel=1e-5)


def test_bootstrapped_ce_ignore_index():
    logits, target = _seg_inputs(2)
    ce = BootstrappedCE(start_warm=0, end_warm=0, top_p=0.5)
    base, _ = ce(logits, target, iteration=1)
    changed = logits.clone()
    changed[0, :, 0, :] = 100.0 * torch.randn(3, 4)  # row 0 of frame 0 is void
    assert ce(changed, target, iteration=1).loss.item() == base.item()
    all_void = torch.full_like(target, V)
    logits.requires_grad_(True)
    empty, _ = ce(logits, all_void, iteration=1)
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError):
        ce(logits, torch.full_like(target, 3), iteration=1)


def test_bootstrapped_ce_grads_flow():
    logits, target = _seg_inputs(3)
    logits.requires_grad_(True)
    BootstrappedCE()(logits, target, iteration=80_000).loss.backward()
    assert torch.isfinite(logits.grad).all()
    # Only the 5 hardest pixels receive gradient.
    touched = (logits.grad.abs().sum(1) > 0).sum().item()
    assert touched == 5


# --------------------------------------------------------------------------------------------
# combine_losses
# --------------------------------------------------------------------------------------------


def test_combine_losses():
    terms = {"seg": torch.tensor(2.0), "repr": torch.tensor(3.0), "logit": torch.tensor(5.0)}
    assert combine_losses(terms).item() == 10.0
    weights = LossWeights(seg=1.0, repr=0.5, logit=0.1)
    assert combine_losses(terms, weights).item() == pytest.approx(2 + 1.5 + 0.5)
    assert combine_losses({"seg": terms["seg"], "repr": terms["repr"]}, weights).item() == 3.5
    with pytest.raises(ValueError, match="segm"):
        combine_losses({"segm": terms["seg"]})
    with pytest.raises(ConfigError):
        LossWeights(repr=-1.0)
