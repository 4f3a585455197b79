"""Tests of the learned planner (tiny Qwen3-VL + tiny OPT decoder, CPU, no downloads)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.models.planner_model import tiny_vlm, vlm_backbone
from backend.planning.base import (
    PlanRequest,
    PlanRequestError,
    SceneContext,
    SceneSubject,
    ShotPrompt,
)
from backend.planning.learned import TINY_MODEL, LearnedPlanner, scene_origin
from backend.training.train_planner import TrainPlannerConfig, collate_examples, train_planner
from tests.backend.training.synthetic import synthetic_sequence, write_dataset

REQUEST = PlanRequest("a figure in an empty room",
                      [ShotPrompt("slow dolly in"), ShotPrompt("pan left", name="wide")], seed=7)


@pytest.fixture(scope="module")
def planner() -> LearnedPlanner:
    return LearnedPlanner.tiny(seed=0)


def assert_valid(sequence) -> None:
    for shot in sequence.shots:
        rotations = shot.c2w[:, :3, :3]
        gram = np.swapaxes(rotations, -1, -2) @ rotations
        assert np.abs(gram - np.eye(3)).max() < 1e-6
        assert np.allclose(np.linalg.det(rotations), 1.0)
        assert np.all(shot.K[:, :2] > 0)
    sequence.validate()


def test_forward_shapes(planner: LearnedPlanner) -> None:
    tokenizer = planner.tokenizer
    items = []
    for seed, image in ((0, np.zeros((40, 60, 3), np.uint8)), (1, None)):
        sequence = synthetic_sequence(seed, num_shots=seed + 1)
        prompt = planner.prompt_inputs(sequence.prompt, [s.prompt for s in sequence.shots],
                                       image)
        tokens = torch.from_numpy(tokenizer.encode(tokenizer.from_sequence(sequence)))
        items.append({"prompt": prompt, "tokens": tokens, "num_shots": len(sequence.shots)})
    batch = collate_examples(items, planner)
    output = planner.network(batch["prompts"], batch["input_ids"], batch["token_lengths"])
    config = planner.model.config
    assert output.logits.shape == (*batch["input_ids"].shape, tokenizer.vocab_size)
    assert [c.shape for c in output.camera_codes] == [
        (n * config.num_query_tokens, config.decoder_hidden_size) for n in (1, 2)]
    assert batch["frame_positions"].shape == (2, 2, tokenizer.frames_per_shot,
                                              len(tokenizer.frame_slots))
    # The queries really go through the VLM: its hidden states at the query slots are used.
    codes = planner.model.encode_prompts(vlm_backbone(planner.network.vlm), batch["prompts"])
    assert torch.allclose(codes[1], output.camera_codes[1])


@pytest.mark.parametrize("num_shots", [1, 3])
def test_random_weights_always_give_valid_plans(planner: LearnedPlanner, num_shots: int) -> None:
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for seed in range(2):
        request = PlanRequest("test", [ShotPrompt(f"shot {i}") for i in range(num_shots)],
                              image=image if seed else None, seed=seed)
        result = planner.plan(request)
        assert len(result.sequence.shots) == num_shots
        assert_valid(result.sequence)
        assert result.sequence.metadata["planner"]["name"] == "learned"
        frames = [(s.frame_start, s.frame_end) for s in result.sequence.shots]
        assert frames[0][0] == 1
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(frames))


def test_seed_reproduces_and_varies(planner: LearnedPlanner) -> None:
    first = planner.generate_tokens(REQUEST)
    assert np.array_equal(first, planner.generate_tokens(REQUEST))
    other = PlanRequest(REQUEST.prompt, REQUEST.shots, seed=8)
    assert not np.array_equal(first, planner.generate_tokens(other))
    names = [s.name for s in planner.plan(REQUEST).sequence.shots]
    assert names == ["shot_010", "wide"]


def test_plan_starts_at_the_scene_camera(planner: LearnedPlanner) -> None:
    camera = np.eye(4)
    camera[:3, :3] = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # looking along +Y
    camera[:3, 3] = [1.0, -5.0, 1.5]
    scene = SceneContext(fps=30.0, resolution=(640, 480), camera_c2w=camera, frame_start=101)
    request = PlanRequest("x", [ShotPrompt("orbit")], scene=scene, seed=1)
    sequence = planner.plan(request).sequence
    assert np.allclose(sequence.shots[0].c2w[0], camera, atol=1e-9)
    assert sequence.shots[0].frame_start == 101 and sequence.fps == 30.0
    assert np.allclose(sequence.shots[0].K[:, 2:], [320.0, 240.0])


def test_default_origin_looks_at_the_subject() -> None:
    subject = SceneSubject("hero", np.array([2.0, 3.0, 1.0]), np.array([1.5, 2.5, 0.0]),
                           np.array([2.5, 3.5, 2.0]))
    pose = scene_origin(SceneContext(subjects=[subject]))
    to_subject = np.array([2.0, 3.0, 1.0]) - pose[:3, 3]
    assert np.allclose(pose[:3, 2], to_subject / np.linalg.norm(to_subject))
    assert pose[2, 1] < 0  # image "down" points down in the world
    # 2.5 box diagonals (6.1 m) is more than the 4 m default.
    assert np.linalg.norm(to_subject) == pytest.approx(2.5 * np.sqrt(6.0))
    assert np.linalg.norm(scene_origin(SceneContext())[:3, 3]) == pytest.approx(4.0)


def test_too_many_shots_is_refused(planner: LearnedPlanner) -> None:
    shots = [ShotPrompt("x")] * (planner.model.config.max_shots + 1)
    with pytest.raises(PlanRequestError, match=r"^shots: "):
        planner.plan(PlanRequest("x", shots))


def test_trained_saved_loaded_planner_gives_the_same_tokens(tmp_path: Path) -> None:
    planner = LearnedPlanner.tiny(seed=1)
    data = write_dataset(tmp_path / "data", count=3)
    config = TrainPlannerConfig(data=data, out=tmp_path / "run", steps=3, lr=1e-3,
                                batch_size=3, save_every=100, log_every=100)
    train_planner(config, planner)
    tokens = planner.generate_tokens(REQUEST)
    planner.save_pretrained(tmp_path / "saved")
    loaded = LearnedPlanner.from_pretrained(tmp_path / "saved", device="cpu")
    assert np.array_equal(loaded.generate_tokens(REQUEST), tokens)
    # The run's own final folder holds the same weights.
    from_run = LearnedPlanner.from_pretrained(tmp_path / "run", device="cpu")
    assert np.array_equal(from_run.generate_tokens(REQUEST), tokens)
    assert (tmp_path / "saved" / "vlm_lora" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "saved" / "model" / "diffusion_pytorch_model.safetensors").is_file()


def test_from_pretrained_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"planner\.json"):
        LearnedPlanner.from_pretrained(tmp_path)


def test_a_local_vlm_folder_is_recorded_not_copied(tmp_path: Path) -> None:
    vlm, tokenizer, processor = tiny_vlm(seed=2)
    for part in (vlm, tokenizer, processor):
        part.save_pretrained(tmp_path / "Qwen3-VL-tiny")
    planner = LearnedPlanner.from_vlm(tmp_path / "Qwen3-VL-tiny", lora_rank=4,
                                      **{**TINY_MODEL, "frames_per_shot": 4})
    assert planner.model.config.vlm_hidden_size == vlm.config.text_config.hidden_size
    trainable = {n for n, p in planner.network.vlm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    tokens = planner.generate_tokens(REQUEST)
    saved = planner.save_pretrained(tmp_path / "planner")
    assert not (saved / "vlm").exists()
    recorded = json.loads((saved / "planner.json").read_text())["vlm"]
    assert Path(recorded) == (tmp_path / "Qwen3-VL-tiny").resolve()
    loaded = LearnedPlanner.from_pretrained(saved, device="cpu")
    assert np.array_equal(loaded.generate_tokens(REQUEST), tokens)
