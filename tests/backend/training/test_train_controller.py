"""train controller on a tiny random Wan and two tiny synthetic multi-shot videos (CPU)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from backend.camera.se3 import make_pose
from backend.generators.smoke import build_pipeline
from backend.generators.video import write_mp4
from backend.models.camera_dit import CAMERA_WEIGHTS_NAME, LORA_WEIGHTS_NAME, CameraDiTModel
from backend.shots import Shot, ShotSequence, save
from backend.training.train_controller import (
    TrainControllerConfig,
    add_arguments,
    sample_sigmas,
    train_controller,
)

SHOT_LENGTHS = (6, 7)


def synthetic_sample(folder: Path, name: str, seed: int) -> None:
    """A 2-shot video (a bright square moving with the camera) and its ShotSequence."""
    rng = np.random.default_rng(seed)
    total = sum(SHOT_LENGTHS)
    frames = np.zeros((total, 32, 32, 3), np.uint8)
    frames[..., int(rng.integers(3))] = 60
    shots, start = [], 0
    for k, count in enumerate(SHOT_LENGTHS):
        step = int(rng.integers(1, 3)) * (1 if k == 0 else -1)
        for i in range(count):
            x = 8 + step * i
            frames[start + i, 8:20, x:x + 12] = 220
        centres = np.stack([np.arange(count) * 0.1 * step, np.zeros(count), np.zeros(count)], -1)
        shots.append(Shot(name=f"shot_{k}", camera="Camera", frame_start=1 + start,
                          frame_end=start + count, prompt="a slow pan left" if k else "a track",
                          c2w=make_pose(np.repeat(np.eye(3)[None], count, 0), centres),
                          K=np.tile([30.0, 30.0, 16.0, 16.0], (count, 1))))
        start += count
    write_mp4(frames, 16.0, folder / f"{name}.mp4")
    save(ShotSequence(fps=16.0, resolution=(32, 32), shots=shots, prompt="a robot in a room"),
         folder / f"{name}.shots.json")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("controller")
    build_pipeline(weight_seed=0).save_pretrained(root / "base")
    (root / "data").mkdir()
    for i in range(2):
        synthetic_sample(root / "data", f"clip_{i}", seed=i)
    return root / "base", root / "data"


def config(setup, out: Path, **kwargs) -> TrainControllerConfig:
    base, data = setup
    options = {"steps": 4, "lr": 3e-3, "lora_rank": 4, "frames_per_shot": 5, "height": 32,
               "width": 32, "max_sequence_length": 16, "rope_axes_dim": (2, 2, 4, 4),
               "rope_max_shots": 4, "save_every": 2, "log_every": 1000, **kwargs}
    return TrainControllerConfig(base=base, data=data, out=out, **options)


def test_sigmas_stay_in_the_stage_range() -> None:
    generator = torch.Generator().manual_seed(0)
    high = sample_sigmas(1000, "high", 5.0, 0.875, generator)
    low = sample_sigmas(1000, "low", 5.0, 0.875, generator)
    assert high.min() >= 0.875 and high.max() <= 1.0
    assert low.max() < 0.875 and low.min() >= 0.0


def test_cli_parses_train_controller(setup, tmp_path: Path) -> None:
    base, data = setup
    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--base", str(base), "--data", str(data), "--out", str(tmp_path),
                              "--stage", "low", "--rope-axes-dim", "2,2,4,4"])
    assert args.stage == "low" and args.rope_axes_dim == (2, 2, 4, 4) and args.func


def test_loss_falls_and_checkpoints_load(setup, tmp_path: Path) -> None:
    history = train_controller(config(setup, tmp_path / "run", steps=30, lr=1e-2,
                                      save_every=15))
    losses = [h["loss"] for h in history]
    assert len(losses) == 30 and all(h["sigma"] >= 0.875 for h in history)
    assert np.mean(losses[-8:]) < 0.85 * np.mean(losses[:8])
    out = tmp_path / "run"
    assert [p.name for p in sorted((out / "checkpoints").glob("step-*"))] == [
        "step-0000015", "step-0000030"]
    assert (out / CAMERA_WEIGHTS_NAME).is_file() and (out / LORA_WEIGHTS_NAME).is_file()
    wan = build_pipeline(weight_seed=0)
    model = CameraDiTModel.from_camera_pretrained(out, wan.transformer)
    assert torch.count_nonzero(model.camera_encoder[0].weight) > 0
    assert "default" in model.peft_config
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 30


def test_resume_continues_exactly(setup, tmp_path: Path) -> None:
    straight = train_controller(config(setup, tmp_path / "a"))
    first = train_controller(config(setup, tmp_path / "b", steps=2))
    rest = train_controller(config(setup, tmp_path / "b", resume=True))
    assert [h["step"] for h in first + rest] == [1, 2, 3, 4]
    np.testing.assert_allclose([h["loss"] for h in first + rest],
                               [h["loss"] for h in straight], rtol=1e-4)
    state = json.loads((tmp_path / "b" / "checkpoints" / "step-0000004" /
                        "trainer_state.json").read_text())
    assert state["step"] == 4


def test_low_stage_trains_lora_only(setup, tmp_path: Path) -> None:
    train_controller(config(setup, tmp_path / "high", steps=2))
    history = train_controller(config(setup, tmp_path / "low", stage="low", steps=2,
                                      camera_from=tmp_path / "high"))
    assert all(h["sigma"] < 0.875 for h in history)
    high = safetensors.torch.load_file(tmp_path / "high" / CAMERA_WEIGHTS_NAME)
    low = safetensors.torch.load_file(tmp_path / "low" / CAMERA_WEIGHTS_NAME)
    assert high.keys() == low.keys()
    for key in high:
        torch.testing.assert_close(high[key], low[key])  # the camera encoder stayed frozen
    lora = safetensors.torch.load_file(tmp_path / "low" / LORA_WEIGHTS_NAME)
    assert any(torch.count_nonzero(v) for k, v in lora.items() if "lora_B" in k)
