from __future__ import annotations

import pytest
import torch

from mobilevos.config import MemoryConfig
from mobilevos.errors import ConfigError
from mobilevos.memory import MemoryBank
from mobilevos.model.readout import memory_read


def frame_tensors(t: int, k: int = 2):
    """A key and values whose entries all equal the frame index, so slots can be identified."""
    key = torch.full((1, 4, 2, 3), float(t))
    values = torch.full((1, k, 5, 2, 3), float(t))
    return key, values


def write(bank: MemoryBank, t: int, key, values, annotated: bool) -> None:
    bank.write(bank.slot_for(t, annotated), t, key, values)


def run_policy(bank: MemoryBank, frames: int, annotated: frozenset[int] = frozenset({0})):
    for t in range(frames):
        slot = bank.slot_for(t, annotated=t in annotated)
        if slot is not None:
            bank.write(slot, t, *frame_tensors(t, bank.num_objects))


def read(bank: MemoryBank, query_key):
    return memory_read(query_key, bank.keys, bank.values, bank.batch_valid(1, "cpu"))


def test_student_policy_keeps_first_and_latest_frame():
    bank = MemoryBank(MemoryConfig(pinned=1, recent=1, write_every=1))
    bank.add_objects(2)
    run_policy(bank, 10)
    assert bank.frame_index.tolist() == [0, 9]
    assert bank.keys[0, 0, :, 0, 0].tolist() == [0.0, 9.0]
    assert bank.values[0, 1, 0, :, 0, 0].tolist() == [0.0, 9.0]


def test_capacity_never_exceeded_and_shapes_constant_over_thousands_of_writes():
    bank = MemoryBank(MemoryConfig(pinned=1, recent=3, write_every=1))
    bank.add_objects(2)
    write(bank, 0, *frame_tensors(0), annotated=True)
    shapes = (bank.keys.shape, bank.values.shape, bank.valid.shape)
    nbytes = bank.nbytes
    for t in range(1, 3000):
        slot = bank.slot_for(t, annotated=False)
        assert slot == 1 + (t - 1) % 3
        bank.write(slot, t, *frame_tensors(t))
        assert (bank.keys.shape, bank.values.shape, bank.valid.shape) == shapes
    assert bank.nbytes == nbytes
    assert bank.keys.shape[2] == 4
    # The pinned slot survives; the ring holds the last three frames (FIFO order by slot).
    assert bank.frame_index[0].item() == 0
    assert sorted(bank.frame_index[1:].tolist()) == [2997, 2998, 2999]
    assert bank.frame_index[1:].tolist() == [2998, 2999, 2997]  # slot = write count mod 3


def test_ring_evicts_oldest_first():
    bank = MemoryBank(MemoryConfig(pinned=1, recent=2))
    bank.add_objects(1)
    write(bank, 0, *frame_tensors(0, 1), annotated=True)
    seen = []
    for t in range(1, 6):
        write(bank, t, *frame_tensors(t, 1), annotated=False)
        seen.append(sorted(bank.frame_index[1:].tolist()))
    assert seen == [[-1, 1], [1, 2], [2, 3], [3, 4], [4, 5]]


def test_teacher_policy_writes_every_nth_frame():
    bank = MemoryBank(MemoryConfig(pinned=1, recent=4, write_every=5))
    bank.add_objects(1)
    run_policy(bank, 31)
    assert sorted(bank.frame_index.tolist()) == [0, 15, 20, 25, 30]


def test_new_annotation_replaces_oldest_pinned_frame():
    bank = MemoryBank(MemoryConfig(pinned=2, recent=1))
    bank.add_objects(1)
    run_policy(bank, 12, annotated=frozenset({0, 4, 8}))
    assert bank.frame_index[:2].tolist() == [8, 4]
    assert bank.frame_index[2].item() == 11


def test_object_added_later_is_invalid_in_older_slots_and_reads_only_its_own():
    bank = MemoryBank(MemoryConfig(pinned=2, recent=1))
    bank.add_objects(1)
    write(bank, 0, torch.zeros(1, 4, 2, 3), torch.full((1, 1, 5, 2, 3), 1.0), annotated=True)
    bank.add_objects(1)
    assert bank.valid.tolist() == [[True, False, False], [False, False, False]]
    values = torch.stack([torch.full((5, 2, 3), 2.0), torch.full((5, 2, 3), 3.0)])[None]
    write(bank, 5, torch.zeros(1, 4, 2, 3), values, annotated=True)
    assert bank.valid.tolist() == [[True, True, False], [False, True, False]]
    out = read(bank, torch.zeros(1, 4, 2, 3))
    # Equal keys: object 1 averages its two frames (1 and 2), object 2 sees only frame 5 (3).
    torch.testing.assert_close(out[0, 0], torch.full((5, 2, 3), 1.5))
    torch.testing.assert_close(out[0, 1], torch.full((5, 2, 3), 3.0))


def test_remove_objects_keeps_the_others_in_order():
    bank = MemoryBank(MemoryConfig())
    bank.add_objects(3)
    values = torch.arange(3.0)[None, :, None, None, None].expand(1, 3, 5, 2, 3)
    write(bank, 0, torch.zeros(1, 4, 2, 3), values, annotated=True)
    bank.remove_objects([1])
    assert bank.num_objects == 2
    assert bank.values[0, :, 0, 0, 0, 0].tolist() == [0.0, 2.0]


def test_writes_keep_autograd_graph_when_recording():
    bank = MemoryBank(MemoryConfig(pinned=1, recent=1))
    bank.add_objects(1)
    key = torch.randn(1, 4, 2, 3, requires_grad=True)
    values = torch.randn(1, 1, 5, 2, 3, requires_grad=True)
    write(bank, 0, key, values, annotated=True)
    first = read(bank, torch.randn(1, 4, 2, 3))
    write(bank, 1, key * 2, values * 2, annotated=False)  # would break backward if in place
    (first.sum() + read(bank, torch.randn(1, 4, 2, 3)).sum()).backward()
    assert key.grad is not None and values.grad is not None


def test_policy_decides_slots_and_write_refuses_another_slot():
    bank = MemoryBank(MemoryConfig(pinned=2, recent=2, write_every=3))
    bank.add_objects(1)
    assert bank.slot_for(0, annotated=False) is None  # nothing to recall yet: no ring write
    assert bank.slot_for(0, annotated=True) == 0
    write(bank, 0, *frame_tensors(0, 1), annotated=True)
    assert [bank.slot_for(t, annotated=False) for t in (1, 2, 3)] == [None, None, 2]
    assert bank.slot_for(1, annotated=True) == 1
    with pytest.raises(ValueError, match="does not go to slot"):
        bank.write(3, 1, *frame_tensors(1, 1))  # frame 1 is not due for the ring
    write(bank, 3, *frame_tensors(3, 1), annotated=False)
    assert [bank.slot_for(t, annotated=False) for t in (4, 5, 6)] == [None, None, 3]


def test_invalid_policies_are_config_errors():
    with pytest.raises(ConfigError):
        MemoryConfig(pinned=0)
    with pytest.raises(ConfigError):
        MemoryConfig(write_every=0)
