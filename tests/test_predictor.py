from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mobilevos.config import MemoryConfig
from mobilevos.engine import TorchEngine, unroll_clip
from mobilevos.errors import ConfigError, InputError
from mobilevos.model.network import normalize_image
from mobilevos.predictor import FrameGeometry, VOSPredictor


def random_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("model_name", "shape", "size", "memory", "padding"),
    [
        ("tiny_model", (64, 96), 64, None, 0),  # the plain case
        ("tiny_model", (37, 53), 40, None, 0),  # resize + pad to the stride, back to the input
        ("tiny_model", (64, 96), 64, MemoryConfig(pinned=1, recent=2, write_every=2), 0),
        ("tiny_model", (64, 96), 64, None, 2),  # padded object slots in the training batch
        ("tiny_fast_model", (64, 96), 64, None, 0),  # no value trunk, the light decoder
        ("tiny_fast_model", (37, 53), 40, None, 2),
    ],
)
def test_training_unroll_equals_streaming_step(model_name, shape, size, memory, padding, request):
    """The repo's key invariant: the training unroll of a clip == frame-by-frame step()."""
    tiny_model = request.getfixturevalue(model_name)
    h, w = shape
    frames = random_frames(6, h, w)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[h // 8 : h // 2, w // 8 : w // 2] = 3
    labels[h // 2 + 2 :, w // 2 :] = 7
    predictor = VOSPredictor.from_model(tiny_model, size=size, memory=memory)
    streamed = []
    for t, frame in enumerate(frames):
        predictor.step(frame, mask=labels if t == 0 else None)
        if t:
            streamed.append(predictor.probabilities)

    geometry = FrameGeometry.for_frame(h, w, size)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    clip = normalize_image(geometry.to_network(clip, "bilinear"))[None]
    onehot = torch.stack([torch.from_numpy(labels == i) for i in (3, 7)]).float()[None]
    masks = geometry.to_network(onehot, "area")
    masks = torch.cat([masks, masks.new_zeros(1, padding, *masks.shape[-2:])], dim=1)
    present = torch.tensor([[True, True] + [False] * padding])
    with torch.no_grad():
        out = unroll_clip(TorchEngine(tiny_model), clip, masks, present, memory)
    prob = torch.softmax(out.logits[0], dim=1)[:, :3]
    torch.testing.assert_close(torch.stack(streamed), geometry.to_input(prob), atol=1e-5, rtol=1e-4)


def test_uint8_and_float_frames_give_the_same_result(tiny_model, two_object_mask):
    frames = random_frames(3, 64, 96)
    a, b = (
        VOSPredictor.from_model(tiny_model, size=64),
        VOSPredictor.from_model(tiny_model, size=64),
    )
    for t, frame in enumerate(frames):
        mask = two_object_mask if t == 0 else None
        la = a.step(frame, mask=mask)
        lb = b.step(frame.astype(np.float32) / 255, mask=mask)
        np.testing.assert_array_equal(la, lb)


@pytest.mark.parametrize("size", [(64, 96), (37, 53), (101, 67)])
def test_output_has_input_size_and_callers_ids(tiny_model, size):
    h, w = size
    mask = np.zeros(size, dtype=np.uint8)
    mask[: h // 3, : w // 3] = 3
    mask[h // 2 :, w // 2 :] = 7
    predictor = VOSPredictor.from_model(tiny_model, size=48)
    for t, frame in enumerate(random_frames(3, h, w)):
        labels = predictor.step(frame, mask=mask if t == 0 else None)
        assert labels.shape == size and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 3, 7}
        if t == 0:
            np.testing.assert_array_equal(labels, mask)
    assert predictor.object_ids == [3, 7]
    assert predictor.probabilities.shape == (3, h, w)


def test_given_mask_is_reproduced_and_void_is_ignored(tiny_model):
    mask = np.zeros((64, 96), dtype=np.uint8)
    mask[10:20, 10:20] = 5
    mask[0:4] = 255  # void rows: not an object, not background
    predictor = VOSPredictor.from_model(tiny_model, size=64)
    labels = predictor.step(random_frames(1, 64, 96)[0], mask=mask)
    assert predictor.object_ids == [5]
    np.testing.assert_array_equal(labels[4:], mask[4:])
    assert not (labels[:4] == 255).any()


def test_objects_added_mid_video_and_removed(tiny_model, two_object_mask):
    frames = random_frames(6, 64, 96)
    first = np.where(two_object_mask == 3, 3, 0).astype(np.uint8)
    later = np.zeros_like(first)
    later[40:60, 60:90] = 7
    predictor = VOSPredictor.from_model(
        tiny_model, size=64, memory=MemoryConfig(pinned=2, recent=1)
    )
    predictor.step(frames[0], mask=first)
    predictor.step(frames[1])
    assert predictor.object_ids == [3]
    labels = predictor.step(frames[2], mask=later)
    assert predictor.object_ids == [3, 7]
    np.testing.assert_array_equal(labels == 7, later == 7)  # the given object is exactly its mask
    # Slots: 0 frame 0 (pinned), 1 frame 2 (pinned), 2 frame 1 (ring): object 7 only has frame 2.
    assert predictor.memory.frame_index.tolist() == [0, 2, 1]
    assert predictor.memory.valid.tolist() == [[True, True, True], [False, True, False]]
    predictor.step(frames[3])
    predictor.remove_objects([3])
    assert predictor.object_ids == [7]
    labels = predictor.step(frames[4])
    assert set(np.unique(labels)) <= {0, 7}
    assert predictor.probabilities.shape[0] == 2
    with pytest.raises(ConfigError):
        predictor.remove_objects([3])


def test_later_mask_without_objects_is_an_ordinary_frame(tiny_model, two_object_mask):
    frames = random_frames(3, 64, 96)
    a, b = (
        VOSPredictor.from_model(tiny_model, size=64),
        VOSPredictor.from_model(tiny_model, size=64),
    )
    empty = np.zeros_like(two_object_mask)
    for t, frame in enumerate(frames):
        first = two_object_mask if t == 0 else None
        la = a.step(frame, mask=first)
        lb = b.step(frame, mask=first if t == 0 else empty)
        np.testing.assert_array_equal(la, lb)
    assert a.memory.frame_index.tolist() == b.memory.frame_index.tolist() == [0, 2]


def test_memory_bytes_constant_over_1000_frames(tiny_model):
    predictor = VOSPredictor.from_model(tiny_model, size=32)
    frame = random_frames(1, 32, 48)[0]
    mask = np.zeros((32, 48), dtype=np.uint8)
    mask[8:20, 8:30] = 1
    predictor.step(frame, mask=mask)
    predictor.step(frame)
    nbytes = predictor.memory.nbytes
    for _ in range(1000):
        predictor.step(frame)
    assert predictor.memory.nbytes == nbytes
    assert predictor.memory.keys.shape[2] == 2
    assert predictor.memory.frame_index.tolist() == [0, 1001]


def test_first_frame_without_mask_or_object_is_an_error(tiny_model):
    predictor = VOSPredictor.from_model(tiny_model, size=32)
    frame = random_frames(1, 32, 48)[0]
    with pytest.raises(InputError, match="needs a mask"):
        predictor.step(frame)
    with pytest.raises(InputError, match="no object"):
        predictor.step(frame, mask=np.zeros((32, 48), dtype=np.uint8))
    with pytest.raises(InputError, match="mask is 10x10 but frames are 32x48"):
        predictor.step(frame, mask=np.ones((10, 10), dtype=np.uint8))


def test_frame_geometry_resizes_short_side_and_pads_to_stride():
    g = FrameGeometry.for_frame(720, 1280, 480)
    assert (g.resized_height, g.resized_width) == (480, 853)
    assert (g.padded_height, g.padded_width) == (480, 864)
    x = torch.rand(1, 1, 720, 1280)
    assert g.to_input(g.to_network(x, "bilinear")).shape == x.shape


def test_unavailable_device_is_a_config_error(tiny_model):
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            VOSPredictor.from_model(tiny_model, device="cuda")
    with pytest.raises(ConfigError):
        VOSPredictor.from_model(tiny_model, device="tpu")


def test_a_model_is_not_an_engine(tiny_model):
    with pytest.raises(ConfigError, match=r"VOSPredictor\.from_model\(model"):
        VOSPredictor(tiny_model)


def test_channels_last_engine_matches_contiguous(two_object_mask):
    from mobilevos.config import get_preset
    from mobilevos.model.network import build_model

    torch.manual_seed(0)
    model = build_model(get_preset("mobilevos-tiny"))
    plain = VOSPredictor.from_model(copy.deepcopy(model), size=64, channels_last=False)
    fast = VOSPredictor.from_model(copy.deepcopy(model), size=64, channels_last=True)
    weight = fast.engine.model.query_encoder.key_proj.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    for t, frame in enumerate(random_frames(4, 64, 96)):
        mask = two_object_mask if t == 0 else None
        a, b = plain.step(frame, mask=mask), fast.step(frame, mask=mask)
        torch.testing.assert_close(plain.probabilities, fast.probabilities, atol=1e-5, rtol=1e-4)
        assert (a == b).mean() > 0.99  # argmax may flip where two classes (nearly) tie


@pytest.mark.parametrize("memory", [None, MemoryConfig(pinned=2, recent=2, write_every=2)])
def test_training_unroll_equals_streaming_with_an_object_entering_mid_clip(tiny_model, memory):
    """Object 7 is given on frame 2: the unroll (entry=[0, 2]) must match the session."""
    frames = random_frames(6, 37, 53, seed=4)
    labels = np.zeros((37, 53), dtype=np.uint8)
    labels[4:18, 5:25] = 3
    later = np.zeros_like(labels)
    later[20:34, 28:50] = 7
    predictor = VOSPredictor.from_model(tiny_model, size=40, memory=memory)
    streamed = []
    for t, frame in enumerate(frames):
        predictor.step(frame, mask={0: labels, 2: later}.get(t))
        if t:
            prob = predictor.probabilities
            streamed.append(torch.cat([prob, prob.new_zeros(3 - len(prob), *prob.shape[1:])]))

    geometry = FrameGeometry.for_frame(37, 53, 40)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    clip = normalize_image(geometry.to_network(clip, "bilinear"))[None]
    onehot = torch.stack([torch.from_numpy(labels == 3), torch.from_numpy(later == 7)])
    masks = geometry.to_network(onehot.float()[None], "area")
    with torch.no_grad():
        out = unroll_clip(TorchEngine(tiny_model), clip, masks, None, memory, entry=[0, 2])
    prob = geometry.to_input(torch.softmax(out.logits[0], dim=1))
    # Frame 2's output differs on purpose: the session imposes the given mask again at the
    # input size; what it wrote to memory is the same, as the later frames show.
    later_frames = [0, 2, 3, 4]
    torch.testing.assert_close(
        torch.stack(streamed)[later_frames], prob[later_frames], atol=1e-5, rtol=1e-4
    )
    assert out.hidden is None  # not every frame decodes every object


def test_unroll_refuses_entry_frames_out_of_order(tiny_model):
    clip, masks = torch.zeros(1, 3, 3, 32, 32), torch.zeros(1, 2, 32, 32)
    with pytest.raises(ValueError, match="non-decreasing"):
        unroll_clip(TorchEngine(tiny_model), clip, masks, entry=[2, 0])
