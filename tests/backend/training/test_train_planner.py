"""Tests of backend.training.train_planner: data, a tiny training run, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from backend.planning.learned import LearnedPlanner
from backend.training.train_planner import (
    PlannerDataset,
    TrainPlannerConfig,
    latest_checkpoint,
    load_optimizer,
    save_optimizer,
    train_planner,
)
from tests.backend.training.synthetic import write_dataset


def test_tiny_training_lowers_the_loss(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", count=4)
    config = TrainPlannerConfig(data=data, out=tmp_path / "run", tiny=True, steps=25, lr=3e-3,
                                batch_size=4, save_every=100, log_every=100)
    history = train_planner(config)
    losses = [record["loss"] for record in history]
    assert len(losses) == 25
    assert losses[-1] < 0.7 * losses[0]
    assert sum(losses[-5:]) < sum(losses[:5])
    assert all(record["wavelet"] >= 0 and record["l2"] > 0 for record in history)
    logged = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert len(logged) == 25 and json.loads(logged[-1])["step"] == 25


def test_dataset_reads_sequences_and_images(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", count=2)
    planner = LearnedPlanner.tiny()
    dataset = PlannerDataset(data, planner)
    assert len(dataset) == 2
    assert dataset[0]["prompt"].pixel_values is not None
    assert dataset[1]["prompt"].pixel_values is None
    tokens = dataset[0]["tokens"].numpy()
    assert len(tokens) == planner.tokenizer.sequence_length(dataset[0]["num_shots"])
    with pytest.raises(ValueError, match="no ShotSequence files"):
        PlannerDataset(tmp_path, planner)


def test_checkpoint_and_resume(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", count=2, image=False)
    config = TrainPlannerConfig(data=data, out=tmp_path / "run", tiny=True, steps=2,
                                batch_size=2, save_every=1, log_every=100)
    train_planner(config)
    assert latest_checkpoint(config.out).name == "step_0000002"
    assert (config.out / "checkpoints" / "step_0000001" / "optimizer.safetensors").is_file()
    config.steps, config.resume = 3, True
    history = train_planner(config)
    assert [record["step"] for record in history] == [1, 2, 3]
    state = json.loads((latest_checkpoint(config.out) / "trainer_state.json").read_text())
    assert state["step"] == 3


def test_optimizer_state_round_trip(tmp_path: Path) -> None:
    weights = torch.nn.Parameter(torch.randn(3, 2))
    optimizer = torch.optim.AdamW([weights], lr=0.1)
    weights.sum().backward()
    optimizer.step()
    save_optimizer(optimizer, tmp_path / "opt.safetensors")
    fresh = torch.optim.AdamW([weights], lr=0.5)
    load_optimizer(fresh, tmp_path / "opt.safetensors")
    before, after = optimizer.state_dict(), fresh.state_dict()
    assert after["param_groups"][0]["lr"] == 0.1
    for name, value in before["state"][0].items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(after["state"][0][name]))
