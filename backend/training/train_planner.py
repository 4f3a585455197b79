"""Train the learned planner (``python -m backend train planner``).

Data: a folder of ShotSequence files (``*.json`` / ``*.npz``, :func:`backend.shots.load`) whose
global and shot prompts are the text; a picture with the same stem (``seq.png``, ``.jpg``) is
the optional viewport image. Each sequence becomes the hierarchical VLM prompt and the trajectory
tokens of :mod:`backend.planning.tokenizer`.

Objective (ShotVerse §3.2.5 + CT-1): ``cross-entropy + l2_weight * L2(camera codes) +
wavelet_weight * wavelet(soft-decoded keyframes, target keyframes)``; see
:mod:`backend.training.losses`. Trainable: the LoRA adapter of the VLM and the whole planner
model (queries, projection, OPT decoder); the VLM's own weights stay frozen.

Runs under :class:`accelerate.Accelerator` (``accelerate launch -m backend train planner ...``
for several GPUs; plain ``python -m backend`` for one GPU or the CPU). Checkpoints are planner
folders (:meth:`LearnedPlanner.save_pretrained`) under ``OUT/checkpoints/step_NNNNNNN`` with the
optimizer state as safetensors and ``trainer_state.json``; ``resume`` continues from the latest.
The final planner is written to ``OUT`` itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.planning.learned import LearnedPlanner
from backend.planning.tokenizer import PAD_ID
from backend.shots import load
from backend.training.losses import (
    expected_token_values,
    l2_regularization,
    token_positions,
    trajectory_cross_entropy,
    wavelet_loss,
)

SEQUENCE_SUFFIXES = (".json", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CHECKPOINTS = "checkpoints"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE = "trainer_state.json"


@dataclass
class TrainPlannerConfig:
    """Settings of one training run."""

    data: Path
    """Folder of ShotSequence files (+ optional images with the same stem)."""
    out: Path
    """Output folder: the final planner, ``checkpoints/``, ``train_log.jsonl``."""
    vlm: Path | None = None
    """Local Qwen3-VL folder; None with ``tiny``."""
    tiny: bool = False
    """Train a tiny, randomly initialised planner (tests, smoke runs)."""
    steps: int = 1000
    """Optimizer steps."""
    lr: float = 1e-4
    """AdamW learning rate."""
    batch_size: int = 4
    """Sequences per step and process."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    l2_weight: float = 1e-4
    """Weight of the L2 term on the camera codes."""
    wavelet_weight: float = 0.1
    """Weight of the wavelet regulariser."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    seed: int = 0
    """Seed of initialisation and data order."""
    save_every: int = 500
    """Checkpoint every this many steps (and at the end)."""
    log_every: int = 10
    """Log the losses every this many steps."""
    resume: bool = False
    """Continue from the latest checkpoint in ``out``."""
    mixed_precision: str = "no"
    """accelerate's mixed precision: no, fp16, bf16."""
    lora_rank: int = 16
    """LoRA rank on the VLM (tiny: 4)."""
    model: dict[str, Any] = field(default_factory=dict)
    """Overrides of the planner model settings (decoder_layers, frames_per_shot, ...)."""


# --------------------------------------------------------------------------------------------
# Data


def find_image(path: Path) -> Path | None:
    """The picture beside a sequence file with the same stem, if any."""
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_image(path: Path) -> np.ndarray:
    """uint8 (H, W, 3)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class PlannerDataset(torch.utils.data.Dataset):
    """Every ShotSequence of a folder as (VLM prompt, trajectory tokens), tokenized up front."""

    def __init__(self, folder: str | Path, planner: LearnedPlanner):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"--data: {folder} is not a folder")
        files = sorted(p for p in folder.iterdir() if p.suffix in SEQUENCE_SUFFIXES)
        if not files:
            raise ValueError(f"--data: {folder} holds no ShotSequence files (*.json, *.npz)")
        tokenizer = planner.tokenizer
        self.items = []
        for path in files:
            sequence = load(path)
            image_path = find_image(path)
            image = read_image(image_path) if image_path else None
            try:
                prompt = planner.prompt_inputs(sequence.prompt,
                                               [shot.prompt for shot in sequence.shots], image)
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
            tokens = tokenizer.encode(tokenizer.from_sequence(sequence))
            self.items.append({"prompt": prompt, "tokens": torch.from_numpy(tokens),
                               "num_shots": len(sequence.shots)})
        self.frame_positions = tokenizer.frame_positions

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


def collate_examples(items: list[dict[str, Any]], planner: LearnedPlanner) -> dict[str, Any]:
    """A training batch: collated prompts, right-padded tokens and keyframe token positions.

    frame_positions: (B, S_max, K, F) positions of every keyframe slot in ``input_ids``;
    shot_mask: (B, S_max) which shots exist.
    """
    from backend.models.planner_model import collate_prompts

    lengths = torch.tensor([len(item["tokens"]) for item in items])
    input_ids = torch.full((len(items), int(lengths.max())), PAD_ID, dtype=torch.long)
    for i, item in enumerate(items):
        input_ids[i, : lengths[i]] = item["tokens"]
    tokenizer = planner.tokenizer
    most = max(item["num_shots"] for item in items)
    shape = (len(items), most, tokenizer.frames_per_shot, len(tokenizer.frame_slots))
    positions = torch.zeros(shape, dtype=torch.long)
    shot_mask = torch.zeros(shape[:2], dtype=torch.bool)
    for i, item in enumerate(items):
        count = item["num_shots"]
        positions[i, :count] = torch.from_numpy(tokenizer.frame_positions(count))
        shot_mask[i, :count] = True
    pad = planner.text_tokenizer.pad_token_id or 0
    return {"prompts": collate_prompts([item["prompt"] for item in items], pad),
            "input_ids": input_ids, "token_lengths": lengths, "frame_positions": positions,
            "shot_mask": shot_mask}


# --------------------------------------------------------------------------------------------
# Objective


def planner_losses(network: torch.nn.Module, batch: dict[str, Any], num_bins: int,
                   l2_weight: float, wavelet_weight: float) -> dict[str, torch.Tensor]:
    """Forward one batch; return ``loss`` (the total) and its terms ``ce``, ``l2``, ``wavelet``."""
    input_ids, lengths = batch["input_ids"], batch["token_lengths"]
    output = network(batch["prompts"], input_ids, lengths)
    ce = trajectory_cross_entropy(output.logits, input_ids, lengths)
    l2 = l2_regularization(output.camera_codes)
    # Soft-decoded and target keyframes, (B, S, K, F) in per-slot units [0, 1].
    expected = expected_token_values(output.logits, input_ids, num_bins)
    target = token_positions(input_ids, num_bins)
    positions = batch["frame_positions"]
    rows = torch.arange(len(input_ids), device=input_ids.device)[:, None, None, None]
    wavelet = wavelet_loss(expected[rows, positions], target[rows, positions], batch["shot_mask"])
    loss = ce + l2_weight * l2 + wavelet_weight * wavelet
    return {"loss": loss, "ce": ce.detach(), "l2": l2.detach(), "wavelet": wavelet.detach()}


# --------------------------------------------------------------------------------------------
# Checkpoints


def save_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Optimizer state as safetensors (tensors) + its JSON metadata (scalars, groups)."""
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            key = f"{index}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    meta = {"param_groups": state["param_groups"], "scalars": scalars}
    save_file(tensors, str(path), metadata={"optimizer": json.dumps(meta)})


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Inverse of :func:`save_optimizer`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as archive:
        meta = json.loads(archive.metadata()["optimizer"])
        state: dict[int, dict[str, Any]] = {}
        for key in archive.keys():  # noqa: SIM118 (safe_open is not a mapping)
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = archive.get_tensor(key)
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint with the highest step in ``out/checkpoints``, if any."""
    folder = out / CHECKPOINTS
    found = sorted(folder.glob("step_*")) if folder.is_dir() else []
    found = [p for p in found if (p / TRAINER_STATE).is_file()]
    return found[-1] if found else None


def _save_checkpoint(planner: LearnedPlanner, optimizer, step: int, config: TrainPlannerConfig,
                     history: list[dict[str, float]]) -> Path:
    folder = config.out / CHECKPOINTS / f"step_{step:07d}"
    planner.save_pretrained(folder)
    save_optimizer(optimizer, folder / OPTIMIZER_FILE)
    settings = {key: str(value) if isinstance(value, Path) else value
                for key, value in asdict(config).items()}
    (folder / TRAINER_STATE).write_text(json.dumps(
        {"step": step, "config": settings, "history": history}, indent=1) + "\n")
    return folder


# --------------------------------------------------------------------------------------------
# Training loop


def _new_planner(config: TrainPlannerConfig) -> LearnedPlanner:
    if config.tiny:
        return LearnedPlanner.tiny(seed=config.seed, lora_rank=min(config.lora_rank, 4),
                                   **config.model)
    if config.vlm is None:
        raise ValueError("--vlm: give the local Qwen3-VL folder (or --tiny)")
    return LearnedPlanner.from_vlm(config.vlm, lora_rank=config.lora_rank,
                                   lora_alpha=2 * config.lora_rank, **config.model)


def train_planner(config: TrainPlannerConfig, planner: LearnedPlanner | None = None
                  ) -> list[dict[str, float]]:
    """Train (or resume) a planner; returns the loss history, one entry per step.

    ``planner``: train this one in place instead of building one from ``config`` (tests).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    config.out = Path(config.out)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    resume_from = latest_checkpoint(config.out) if config.resume else None
    start, history = 0, []
    if resume_from is not None:
        planner = LearnedPlanner.from_pretrained(resume_from, device=accelerator.device,
                                                 trainable=True)
        state = json.loads((resume_from / TRAINER_STATE).read_text())
        start, history = state["step"], state["history"]
    elif planner is None:
        planner = _new_planner(config)
    dataset = PlannerDataset(config.data, planner)
    network = planner.network
    network.train()
    parameters = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=min(config.batch_size, len(dataset)), shuffle=True,
        collate_fn=lambda items: collate_examples(items, planner),
        generator=torch.Generator().manual_seed(config.seed + start))
    network, optimizer, loader = accelerator.prepare(network, optimizer, loader)
    if resume_from is not None:
        load_optimizer(optimizer, resume_from / OPTIMIZER_FILE)
        accelerator.print(f"resumed from {resume_from} at step {start}")
    num_bins = planner.tokenizer.num_bins
    log_path = config.out / "train_log.jsonl"
    if accelerator.is_main_process:
        config.out.mkdir(parents=True, exist_ok=True)
    step = start
    epochs = math.ceil(max(config.steps - start, 0) / max(len(loader), 1))
    for _ in range(epochs):
        for batch in loader:
            if step >= config.steps:
                break
            losses = planner_losses(network, batch, num_bins, config.l2_weight,
                                    config.wavelet_weight)
            accelerator.backward(losses["loss"])
            accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            record = {"step": step, **{k: float(accelerator.reduce(v.detach(), "mean"))
                                       for k, v in losses.items()}}
            history.append(record)
            if accelerator.is_main_process:
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
                if step % config.log_every == 0 or step == config.steps:
                    accelerator.print(f"step {step}/{config.steps}  loss {record['loss']:.4f}  "
                                      f"(ce {record['ce']:.4f}, l2 {record['l2']:.4f}, "
                                      f"wavelet {record['wavelet']:.4f})")
            if step % config.save_every == 0 or step == config.steps:
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    _save_checkpoint(planner, optimizer, step, config, history)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        planner.save_pretrained(config.out)
    network.eval()
    return history
