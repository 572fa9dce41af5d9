from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_factory import TINY_RECIPE, recipe
from launch import torchrun
from mobilevos.checkpoint import load_model, read_checkpoint, save_checkpoint
from mobilevos.config import get_preset
from mobilevos.errors import CheckpointError, ConfigError
from mobilevos.model.network import build_model
from mobilevos.predictor import VOSPredictor
from mobilevos.train import Trainer, compute_losses
from mobilevos.train.config import load_train_config
from mobilevos.train.trainer import _lr_factor


def losses(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    keep = ("step", "seg", "repr", "logit", "total", "lr", "max_skip")
    return [{k: v for k, v in json.loads(line).items() if k in keep} for line in lines]


def test_recipes_merge_bases_and_overrides_and_reject_unknown_keys(tmp_path):
    recipe(tmp_path, TINY_RECIPE, "base.yaml")
    path = recipe(tmp_path, "base: base.yaml\nsteps: 9\noptim: {lr: 0.001}\n")
    config = load_train_config(path, ["loss.omega=0.25", "data.crop=32"])
    assert (config.steps, config.optim.lr, config.loss.omega) == (9, 0.001, 0.25)
    assert config.data.crop == 32 and config.model == "mobilevos-tiny"
    with pytest.raises(ConfigError, match="unknown keys stepz"):
        load_train_config(path, ["stepz=3"])
    with pytest.raises(ConfigError, match="unknown keys"):
        load_train_config(path, ["loss.omegaa=1"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_train_config(path, ["steps"])
    assert load_train_config(path, ["optim.lr=3e-4"]).optim.lr == 3e-4  # YAML 1.1: a string
    with pytest.raises(ConfigError, match=r"config\.optim\.lr: expected a number"):
        load_train_config(path, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match=r"config\.steps: expected an integer"):
        load_train_config(path, ["steps=1.5"])


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # Cosine over steps 6..10: flat before 6, then 0.5 * (1 + cos(pi * (step - 6) / 4)).
        ("cosine", {0: 1.0, 5: 1.0, 6: 1.0, 7: 0.853553, 8: 0.5, 9: 0.146447, 10: 0.0}),
        # Milestone 0.5 of the span 6..10 is step 8.
        ("step", {0: 1.0, 6: 1.0, 7: 1.0, 8: 0.1, 10: 0.1}),
    ],
)
def test_schedule_start_decays_only_over_the_last_steps(tmp_path, schedule, expected):
    overrides = [f"optim.schedule={schedule}", "optim.schedule_start=6", "steps=10"]
    config = load_train_config(recipe(tmp_path), [*overrides, "optim.milestones=[0.5]"])
    factors = {step: round(_lr_factor(config, step), 6) for step in expected}
    assert factors == expected
    with pytest.raises(ConfigError, match=r"schedule_start \(10\) must be below steps \(10\)"):
        load_train_config(recipe(tmp_path), [*overrides[:1], "optim.schedule_start=10", "steps=10"])


def test_repeated_steps_on_one_batch_lower_the_loss(tmp_path):
    config = load_train_config(
        recipe(tmp_path), [f"out_dir={tmp_path}/run", "optim.lr=0.002", "optim.schedule=constant"]
    )
    trainer = Trainer(config)
    group = next(trainer.batches())
    first = trainer.train_step(group)["total"]
    for _ in range(14):
        last = trainer.train_step(group)["total"]
    assert last < 0.7 * first


@pytest.mark.parametrize("channels_last", [False, True])
def test_resumed_run_reproduces_the_uninterrupted_loss_curve(tmp_path, channels_last):
    layout = f"channels_last={str(channels_last).lower()}"
    base = load_train_config(recipe(tmp_path), [f"out_dir={tmp_path}/straight", layout])
    Trainer(base).run()
    interrupted = load_train_config(recipe(tmp_path), [f"out_dir={tmp_path}/resumed", layout])
    assert Trainer(interrupted).run(stop_at=3) is None  # state saved at step 2, step 3 logged
    final = Trainer(interrupted, resume=True).run()
    straight, resumed = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == list(range(1, 7))
    assert resumed == straight
    a, b = load_model(tmp_path / "straight" / "final.ckpt"), load_model(final)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), key


def test_a_state_resumes_with_the_objects_combined_elsewhere_not_for_another_model(tmp_path):
    """``aggregate_at`` is not in the weights: a state saved in STCN's order (as the shipped
    students' campaigns were) resumes under ``stride4``; other fields still refuse it."""
    out = f"out_dir={tmp_path}/run"
    assert Trainer(load_train_config(recipe(tmp_path), [out])).run(stop_at=3) is None
    stride4 = ["model_overrides={aggregate_at: stride4}", out]
    trainer = Trainer(load_train_config(recipe(tmp_path), stride4), resume=True)
    assert trainer.model.config.aggregate_at == "stride4" and trainer.step == 2
    wider = ["model_overrides={aggregate_at: stride4, key_dim: 8}", out]
    with pytest.raises(CheckpointError, match="saved for another model"):
        Trainer(load_train_config(recipe(tmp_path), wider), resume=True)


def test_channels_last_training_follows_the_contiguous_loss_curve(tmp_path):
    """The layout changes the convolution kernels, not the maths: same losses up to rounding."""
    torch.manual_seed(1)
    save_checkpoint(build_model(get_preset("mobilevos-tiny")), tmp_path / "teacher.ckpt")
    common = [
        f"teacher.checkpoint={tmp_path}/teacher.ckpt",
        "loss.omega=0.5",
        "loss.logit_weight=1.0",
        "steps=4",
    ]
    runs = {}
    for layout in ("false", "true"):
        config = load_train_config(
            recipe(tmp_path), [*common, f"out_dir={tmp_path}/{layout}", f"channels_last={layout}"]
        )
        trainer = Trainer(config)
        wanted = torch.channels_last if layout == "true" else torch.contiguous_format
        for module in (trainer.model, trainer.teacher):
            kernels = [p for p in module.parameters() if p.dim() == 4]
            assert all(p.is_contiguous(memory_format=wanted) for p in kernels)
        trainer.run()
        runs[layout] = (losses(tmp_path / layout), trainer.model)
    (contiguous, model_a), (channels_last, model_b) = runs["false"], runs["true"]
    assert [r["step"] for r in channels_last] == [r["step"] for r in contiguous]
    for a, b in zip(contiguous, channels_last, strict=True):
        for name in ("seg", "repr", "logit", "total"):
            assert b[name] == pytest.approx(a[name], rel=1e-4, abs=1e-6), (a["step"], name)
    for (key, x), y in zip(
        model_a.state_dict().items(), model_b.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-5, msg=key)
    saved = read_checkpoint(tmp_path / "true" / "final.ckpt").state_dict
    assert all(v.is_contiguous() for v in saved.values())


def test_trained_checkpoint_loads_for_inference(tmp_path):
    config = load_train_config(recipe(tmp_path), [f"out_dir={tmp_path}/run", "steps=2"])
    trainer = Trainer(config)
    final = trainer.run()
    model = load_model(final)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value.cpu()), key
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:30, 10:30] = 1
    labels = VOSPredictor.from_model(model, size=48).step(
        np.zeros((48, 64, 3), np.uint8), mask=mask
    )
    np.testing.assert_array_equal(labels, mask)


def test_distillation_uses_the_frozen_teacher(tmp_path):
    torch.manual_seed(1)
    save_checkpoint(build_model(get_preset("mobilevos-tiny")), tmp_path / "teacher.ckpt")
    config = load_train_config(
        recipe(tmp_path),
        [
            f"out_dir={tmp_path}/run",
            f"teacher.checkpoint={tmp_path}/teacher.ckpt",
            "loss.omega=0.5",
            "loss.logit_weight=1.0",
            "data.clip_length=4",
        ],
    )
    trainer = Trainer(config)
    assert trainer.teacher_memory.capacity == 4  # the teacher keeps every frame of the clip
    group = next(trainer.batches())
    generator = torch.Generator().manual_seed(0)
    terms = compute_losses(
        trainer.wrapped,
        trainer.teacher,
        group[0],
        config.loss,
        0,
        generator,
        trainer.teacher_memory,
    )
    assert set(terms) == {"seg", "repr", "logit", "total"}
    expected = terms["seg"] + config.loss.repr_weight * terms["repr"] + terms["logit"]
    torch.testing.assert_close(terms["total"], expected)
    terms["total"].backward()
    assert all(p.grad is None for p in trainer.teacher.parameters())
    assert any(p.grad is not None for p in trainer.model.parameters())


def test_model_overrides_start_resnet_trunks_from_a_weights_file(tmp_path):
    from torchvision.models import resnet18

    weights = resnet18().state_dict()
    torch.save(weights, tmp_path / "resnet18.pth")
    config = load_train_config(
        recipe(tmp_path),
        [
            "model=mobilevos-r18",
            f"out_dir={tmp_path}/run",
            f"model_overrides={{backbone_weights: {tmp_path}/resnet18.pth}}",
        ],
    )
    trainer = Trainer(config)
    assert torch.equal(trainer.model.query_encoder.trunk.conv1.weight, weights["conv1.weight"])
    with pytest.raises(ConfigError, match="model_overrides"):
        Trainer(load_train_config(recipe(tmp_path), ["model_overrides={widht: 3}"]))


def test_student_checkpoint_of_another_preset_is_refused_as_init(tmp_path):
    save_checkpoint(build_model(get_preset("mobilevos-tiny")), tmp_path / "tiny.ckpt")
    config = load_train_config(
        recipe(tmp_path),
        ["model=mobilevos-mbv2-lite", f"init={tmp_path}/tiny.ckpt", f"out_dir={tmp_path}/run"],
    )
    with pytest.raises(Exception, match="not mobilevos-mbv2-lite"):
        Trainer(config)


DDP_SCRIPT = """
import sys, torch
from mobilevos.distributed import init_distributed, shutdown_distributed
from mobilevos.train import Trainer
from mobilevos.train.config import load_train_config
from mobilevos.train.trainer import _lr_factor

config = load_train_config(sys.argv[1], sys.argv[3:])
context = init_distributed(torch.device("cpu"))
try:
    trainer = Trainer(config, context=context)
    trainer.train_step(next(trainer.batches()))
    if context.rank == 0:
        torch.save({k: p.grad for k, p in trainer.model.named_parameters()}, sys.argv[2])
    # No rank may leave while the other still talks to it.
    context.barrier()
finally:
    shutdown_distributed()
"""


def test_two_process_gloo_ddp_matches_one_process_on_the_concatenated_batch(tmp_path):
    """Per-rank batches of 2 under torchrun equal one process with batch 4 (the same clips)."""
    # Pixel sampling of the representation loss draws per process, so it is left out here.
    overrides = [
        "batch_size=4",
        "data.max_objects=1",
        "optim.grad_clip=0",
        "loss.repr_weight=0",
        f"out_dir={tmp_path}",
    ]
    script = tmp_path / "ddp_step.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    torchrun(str(script), str(recipe(tmp_path)), str(tmp_path / "ddp.pt"), *overrides)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    trainer = Trainer(load_train_config(recipe(tmp_path), overrides))
    trainer.train_step(next(trainer.batches()))
    for name, param in trainer.model.named_parameters():
        torch.testing.assert_close(ddp[name], param.grad, atol=1e-6, rtol=1e-4, msg=name)


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_parses(path):
    config = load_train_config(path)
    get_preset(config.model)
    assert config.data.sources


def _generated_roots(tmp_path: Path) -> dict[str, Path]:
    """Tiny static, synthetic, DAVIS and YouTube-VOS training data in their layouts."""
    from dataset_factory import make_davis, make_ytvos
    from mobilevos.data.synth import SynthConfig, render_video, write_davis_dataset
    from mobilevos.io import write_palette_png

    synth = SynthConfig(height=48, width=64, num_frames=10)
    videos = {f"v{i}": tuple(render_video(100 + i, synth)) for i in range(3)}
    static = tmp_path / "static"
    static.mkdir()
    for i, (frames, labels) in enumerate(videos.values()):
        from PIL import Image

        Image.fromarray(frames[0]).save(static / f"img{i}.jpg")
        write_palette_png(static / f"img{i}.png", labels[0])
    return {
        "static": static,
        "synth": write_davis_dataset(tmp_path / "synth", 3, synth, seed=5, progress=False),
        "davis": make_davis(tmp_path / "davis", videos, year=2017, split="train"),
        "ytvos": make_ytvos(tmp_path / "ytvos", videos, split="train", every=2),
    }


def test_every_stage_recipe_trains_on_generated_data(tmp_path):
    roots = _generated_roots(tmp_path)
    torch.manual_seed(0)
    save_checkpoint(build_model(get_preset("mobilevos-tiny")), tmp_path / "teacher.ckpt")
    stages = {
        "static": f"[{{kind: static, root: {roots['static']}}}]",
        "synth": f"[{{kind: synth, root: {roots['synth']}}}]",
        "main": f"[{{kind: davis, root: {roots['davis']}, repeat: 5}}, "
        f"{{kind: ytvos, root: {roots['ytvos']}}}]",
        "distill": f"[{{kind: davis, root: {roots['davis']}}}]",
    }
    for stage, sources in stages.items():
        overrides = [
            "model=mobilevos-tiny",
            "steps=1",
            "batch_size=2",
            "num_workers=0",
            "data.crop=32",
            "loss.num_samples=32",
            f"data.sources={sources}",
            f"out_dir={tmp_path}/{stage}",
            "val.root=null",
        ]
        if stage == "distill":
            overrides.append(f"teacher.checkpoint={tmp_path}/teacher.ckpt")
        final = Trainer(load_train_config(CONFIGS / "stages" / f"{stage}.yaml", overrides)).run()
        record = losses(tmp_path / stage)[-1]
        assert np.isfinite(record["total"]), stage
        assert ("logit" in record) == (stage == "distill")
        assert load_model(final).config.name == "mobilevos-tiny"
