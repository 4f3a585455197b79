"""The Image Conductor training schedule on tiny models: motion ControlNet, camera LoRA, object
LoRA over the frozen camera LoRA with the orthogonal loss; a few steps lower the loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from backend.cli import main as backend_main
from backend.models.trajectory_controlnet import CAMERA_ADAPTER, OBJECT_ADAPTER
from backend.pipelines.trajectory_controlnet import build_tiny_pipeline
from backend.training.train_controlnet import (
    ClipDataset,
    TrainControlNetConfig,
    stage_losses,
    train_controlnet,
)

FRAMES, SIZE = 4, 16


def _write_clips(folder: Path, count: int = 2, camera_only: bool = False) -> Path:
    """Squares moving right (or the whole picture shifting, camera-only) and their flows."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in range(count):
        background = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
        frames = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
        flows = np.zeros((FRAMES, 2, SIZE, SIZE), np.float32)
        for f in range(FRAMES):
            if camera_only:
                frames[f] = np.roll(background, -f, axis=1)
                flows[f, 0] = -1.0 if f else 0.0
            else:
                frames[f] = background
                frames[f, 4:8, 2 + 2 * f:6 + 2 * f] = 255
                if f:
                    flows[f, 0, 4:8, 2 * f:4 + 2 * f] = 2.0
        np.savez(folder / f"clip_{n}.npz", frames=frames, flows=flows,
                 prompt=np.array("a square moves right"))
    return folder


def _eval_loss(pipeline, config, batch) -> float:
    with torch.no_grad():
        losses = stage_losses(pipeline, pipeline.controlnet, batch, config,
                              torch.Generator().manual_seed(123))
    return float(losses["mse"])


def _batch(folder: Path) -> dict:
    items = [ClipDataset(folder)[i] for i in range(2)]
    return {"pixels": torch.stack([i["pixels"] for i in items]),
            "flows": torch.stack([i["flows"] for i in items]),
            "prompt": [i["prompt"] for i in items]}


def test_motion_stage_lowers_the_loss(tmp_path: Path) -> None:
    data = _write_clips(tmp_path / "mixed")
    config = TrainControlNetConfig(stage="motion", data=data, out=tmp_path / "motion", tiny=True,
                                   steps=8, batch_size=2, lr=1e-3, save_every=4)
    pipeline = build_tiny_pipeline(seed=0, with_adapters=False)
    batch = _batch(data)
    before = _eval_loss(pipeline, config, batch)
    history = train_controlnet(config, pipeline)
    after = _eval_loss(pipeline, config, batch)
    assert len(history) == 8 and after < before
    assert (config.out / "config.json").is_file()
    assert (config.out / "diffusion_pytorch_model.safetensors").is_file()
    assert (config.out / "checkpoints" / "step_0000004" / "trainer_state.json").is_file()
    assert len((config.out / "train_log.jsonl").read_text().splitlines()) == 8


def test_camera_then_object_schedule(tmp_path: Path) -> None:
    camera_data = _write_clips(tmp_path / "camera_only", camera_only=True)
    mixed = _write_clips(tmp_path / "mixed")
    camera = TrainControlNetConfig(stage="camera", data=camera_data, out=tmp_path / "camera",
                                   tiny=True, steps=6, batch_size=2, lr=1e-3, lora_rank=4)
    pipeline = build_tiny_pipeline(seed=0, with_adapters=False)
    base = {k: v.clone() for k, v in pipeline.controlnet.state_dict().items()}
    history = train_controlnet(camera, build_tiny_pipeline(seed=0, with_adapters=False))
    assert all(h["ortho"] == 0 for h in history)
    camera_file = camera.out / "camera_lora.safetensors"
    camera_weights = load_file(camera_file)
    assert camera_weights and all("lora_" in key for key in camera_weights)

    obj = TrainControlNetConfig(stage="object", data=mixed, out=tmp_path / "object", tiny=True,
                                steps=6, batch_size=2, lr=1e-3, lora_rank=4,
                                camera_lora=camera_file, ortho_weight=1.0)
    pipeline = build_tiny_pipeline(seed=0, with_adapters=False)
    history = train_controlnet(obj, pipeline)
    assert all(h["ortho"] > 0 for h in history)
    state = pipeline.controlnet.state_dict()
    for key, value in camera_weights.items():  # stop-gradient: the camera LoRA is untouched
        full = key.replace(".weight", f".{CAMERA_ADAPTER}.weight")
        assert torch.equal(state[full].cpu(), value), key
    object_weights = load_file(obj.out / "object_lora.safetensors")
    assert any(value.abs().sum() > 0 for key, value in object_weights.items()
               if "lora_B" in key)
    assert set(pipeline.controlnet.peft_config) == {CAMERA_ADAPTER, OBJECT_ADAPTER}
    # Base ControlNet weights stay frozen in the LoRA stages.
    for key, value in base.items():
        renamed = key.replace(".to_q.", ".to_q.base_layer.").replace(
            ".to_k.", ".to_k.base_layer.").replace(".to_v.", ".to_v.base_layer.").replace(
            ".to_out.0.", ".to_out.0.base_layer.")
        assert torch.equal(state.get(renamed, state.get(key)), value), key


def test_object_stage_needs_the_camera_lora(tmp_path: Path) -> None:
    config = TrainControlNetConfig(stage="object", data=_write_clips(tmp_path / "d", 1),
                                   out=tmp_path / "o", tiny=True, steps=1)
    with pytest.raises(ValueError, match="--camera-lora"):
        train_controlnet(config)


def test_command_line_runs_a_tiny_stage(tmp_path: Path, capsys) -> None:
    data = _write_clips(tmp_path / "mixed", 1)
    # Through `python -m backend train controlnet`, which hands its options over unparsed.
    assert backend_main(["train", "controlnet", "--stage", "motion", "--data", str(data),
                         "--out", str(tmp_path / "o"), "--tiny", "--steps", "2",
                         "--lr", "1e-4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and np.isfinite(summary["loss"])
