"""``mobilevos info``: presets, parameter counts, checkpoint contents and per-frame latency."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint, trained_presets
from mobilevos.config import PAPER_PARAMETERS, available_presets, get_preset
from mobilevos.costs import count_parameters, preset_flops
from mobilevos.device import resolve_device, synchronize
from mobilevos.engine import TorchEngine, segment_memory
from mobilevos.memory import MemoryBank
from mobilevos.model.encoders import ValueEncoder
from mobilevos.model.network import MobileVOS, build_model


def parameter_breakdown(model: MobileVOS) -> dict[str, int]:
    """Parameters per component (query trunk, ASPP, key projections, value encoder, decoder)."""
    q, v = model.query_encoder, model.value_encoder
    parts = {
        "query trunk": count_parameters(q.trunk),
        "aspp": count_parameters(q.aspp) if q.aspp is not None else 0,
        "key/value projections": count_parameters(q.key_proj) + count_parameters(q.key_comp),
    }
    if isinstance(v, ValueEncoder):
        parts["value trunk"] = count_parameters(v.trunk)
        parts["value fuser"] = count_parameters(v.fuser)
    else:
        parts["value mask branch"] = count_parameters(v)
    parts["decoder"] = count_parameters(model.decoder)
    parts["total"] = count_parameters(model)
    return parts


FLOP_SIZE = (480, 864)
"""The input size of the FLOP columns: 480p at 16:9, padded to the stride."""


def preset_table() -> str:
    """Every preset: parameters (and the paper's), FLOPs of a frame with one object and of each
    further object at :data:`FLOP_SIZE`, memory, and whether trained weights ship."""
    trained = set(trained_presets())
    lines = [
        f"{'preset':<22}{'parameters':>12}{'paper':>8}{'GFLOP':>8}{'+object':>9}  "
        f"{'memory':<16}weights",
    ]
    for name in available_presets():
        config = get_preset(name)
        total = count_parameters(MobileVOS(config))
        paper = PAPER_PARAMETERS.get(name)
        flops = preset_flops(name, (1, 2), FLOP_SIZE)
        one, extra = flops[1]["frame"], flops[2]["frame"] - flops[1]["frame"]
        mem = config.memory
        lines.append(
            f"{name:<22}{total / 1e6:>11.3f}M{f'{paper / 1e6:.1f}M' if paper else '-':>8}"
            f"{one / 1e9:>8.1f}{f'{extra / one:+.1%}':>9}  "
            f"{f'{mem.pinned}+{mem.recent}, every {mem.write_every}':<16}"
            f"{'trained' if name in trained else '-'}"
        )
    lines += [
        f"GFLOP: a frame with one object at {FLOP_SIZE[0]}x{FLOP_SIZE[1]} (query encode, readout "
        "+ decode, value encode); +object: each further object, of that",
        "weights: trained weights ship with the package (load_model(NAME), segment --model NAME)",
    ]
    return "\n".join(lines)


def describe_model(name: str) -> str:
    config = get_preset(name)
    model = MobileVOS(config)
    lines = [f"{name}: {count_parameters(model) / 1e6:.3f} M parameters"]
    paper = PAPER_PARAMETERS.get(name)
    if paper:
        lines.append(f"paper: {paper / 1e6:.1f} M (ratio {count_parameters(model) / paper:.3f})")
    for part, n in parameter_breakdown(model).items():
        lines.append(f"  {part:<24}{n:>12,}")
    lines.append("config: " + json.dumps(config.to_dict()))
    return "\n".join(lines)


def describe_checkpoint(path: str | Path) -> str:
    ckpt = read_checkpoint(path)
    params = sum(
        v.numel()
        for k, v in ckpt.state_dict.items()
        if "running_" not in k and not k.endswith("num_batches_tracked")
    )
    return "\n".join(
        [
            f"{path}: {ckpt.config.name}, {params / 1e6:.3f} M parameters",
            "config: " + json.dumps(ckpt.config.to_dict()),
            "meta: " + json.dumps(ckpt.meta, default=str),
        ]
    )


def describe_default_model() -> str:
    """What the shipped default model is and how it was trained, or that none is installed."""
    if not DEFAULT_CHECKPOINT.is_file():
        return f"default model: none installed ({DEFAULT_CHECKPOINT} is missing)"
    meta = read_checkpoint(DEFAULT_CHECKPOINT).meta
    scores = ", ".join(f"{k} {v:.3f}" for k, v in meta.get("held_out_jf", {}).items())
    minutes = meta.get("train_seconds", 0) / 60
    return "\n".join(
        [
            f"default model ({DEFAULT_CHECKPOINT.name}): {meta.get('recipe', {}).get('model')}, "
            f"{meta.get('steps')} steps ({minutes:.0f} CPU minutes) of {meta.get('stage')}, "
            f"{meta.get('clip_length')}-frame clips, {meta.get('crop')} px crops",
            f"  data: {meta.get('data')}",
            f"  held-out J&F: {scores or 'not measured'}",
            "  recipe and every field: mobilevos info --checkpoint " + str(DEFAULT_CHECKPOINT),
        ]
    )


@torch.inference_mode()
def measure_latency(
    name: str, size: int = 480, frames: int = 10, device: str = "cpu", aspect: float = 16 / 9
) -> tuple[float, float]:
    """Median seconds per frame of streaming inference at ``size`` x ``size*aspect``.

    Returns (segment seconds, memory-write seconds): the first is query encode + read + decode,
    the second the value encode of a frame written to memory. ``mobilevos bench`` measures the
    whole predictor, stage by stage; this is the quick look.
    """
    dev = resolve_device(device)
    model = build_model(get_preset(name), pretrained=False).eval().to(dev)
    engine = TorchEngine(model, channels_last=dev.type == "cpu")
    height, width = size, int(round(size * aspect / 16) * 16)
    image = torch.randn(1, 3, height, width, device=dev)
    mask = torch.zeros(1, 1, height, width, device=dev)
    mask[..., height // 4 : height // 2, width // 4 : width // 2] = 1
    bank = MemoryBank(model.config.memory)
    bank.add_objects(1)
    query = engine.encode_query(image)
    bank.write(bank.slot_for(0, True), 0, query.key, engine.encode_value(image, query, mask))
    seg_times, write_times = [], []
    for t in range(1, frames + 2):
        synchronize(dev)
        start = time.perf_counter()
        query = engine.encode_query(image)
        seg = segment_memory(engine, query, bank)
        synchronize(dev)
        middle = time.perf_counter()
        slot = bank.slot_for(t, annotated=False)
        if slot is not None:
            value = engine.encode_value(image, query, seg.probabilities[:, 1:])
            bank.write(slot, t, query.key, value)
        synchronize(dev)
        if t > 1:  # the first frame warms up allocators
            seg_times.append(middle - start)
            write_times.append(time.perf_counter() - middle)
    return statistics.median(seg_times), statistics.median(write_times)


def latency_table(
    names: list[str] | None = None, size: int = 480, frames: int = 10, device: str = "cpu"
) -> str:
    names = names or [n for n in available_presets() if n != "teacher-r50"]
    threads = torch.get_num_threads()
    lines = [
        f"latency per frame, {size}p, 1 object, {device} ({threads} threads), median of {frames}:",
        f"{'preset':<22}{'segment':>10}{'+ write':>10}{'total':>10}",
    ]
    for name in names:
        seg, write = measure_latency(name, size=size, frames=frames, device=device)
        lines.append(
            f"{name:<22}{seg * 1e3:>8.0f}ms{write * 1e3:>8.0f}ms{(seg + write) * 1e3:>8.0f}ms"
        )
    return "\n".join(lines)
