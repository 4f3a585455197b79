"""The learned planner: ShotVerse's VLM + trajectory decoder behind the planner interface.

:class:`LearnedPlanner` binds a Qwen3-VL (weights from a local folder, LoRA adapter via peft),
the planner model of :mod:`backend.models.planner_model` and the trajectory tokenizer of
:mod:`backend.planning.tokenizer`. ``plan`` samples trajectory tokens (nucleus sampling, seeded),
decodes them to keyframes (proper rotations), upsamples every shot to its decoded duration and
places the sequence in the scene: frame 0 of the first shot is the scene's current camera, or a
camera looking at the main subject (or the origin) from its +Y side, slightly above.

A saved planner is a folder::

    planner.json            format, version, the VLM folder, sampling settings
    model/                  TrajectoryPlannerModel (config.json + safetensors)
    vlm_lora/               the LoRA adapter of the VLM (peft: adapter_config.json + safetensors)
    vlm/                    only for a VLM with no folder of its own (the tiny test VLM)

The VLM itself is never copied: ``planner.json`` records its folder (relative paths are read
relative to the planner folder).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.camera.pose12 import orthonormalize_rotation
from backend.camera.se3 import inverse, make_pose
from backend.models.planner_model import (
    LORA_TARGET_MODULES,
    PlannerNetwork,
    PromptInputs,
    TrajectoryPlannerModel,
    build_prompt_inputs,
    collate_prompts,
    tiny_vlm,
    vlm_backbone,
)
from backend.planning.base import (
    Planner,
    PlanRequest,
    PlanRequestError,
    PlanResult,
    SceneContext,
)
from backend.planning.tokenizer import Trajectory, TrajectoryTokenizer, upsample_shot
from backend.shots import Shot, ShotSequence

FORMAT = "shotbridge.learned_planner"
VERSION = 1
CONFIG_NAME = "planner.json"
MODEL_FOLDER = "model"
LORA_FOLDER = "vlm_lora"
OWN_VLM_FOLDER = "vlm"
DEFAULT_DISTANCE = 4.0
"""Metres from the main subject to the default first camera when the scene has no camera."""
DEFAULT_ELEVATION = np.deg2rad(15.0)
"""Angle above the horizon of that default camera."""
TINY_MODEL = {"num_query_tokens": 4, "max_shots": 8, "frames_per_shot": 8, "decoder_layers": 2,
              "decoder_hidden_size": 32, "decoder_attention_heads": 2, "decoder_ffn_dim": 64,
              "max_position_embeddings": 1024, "dropout": 0.0}
"""Planner-model sizes of :meth:`LearnedPlanner.tiny` (overridable)."""


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) OpenCV camera-to-world at ``eye`` looking at ``target`` with world +Z up."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-8 else np.array(
        [1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    return make_pose(np.stack([right, down, forward], axis=-1), eye)


def scene_origin(scene: SceneContext) -> np.ndarray:
    """(4, 4) where frame 0 of the first planned shot goes in the scene's world.

    The scene's current camera when there is one; otherwise a camera ``DEFAULT_DISTANCE`` (or
    2.5 bounding-box diagonals, if more) from the main subject's box centre (the origin without
    subjects), on its -Y side, ``DEFAULT_ELEVATION`` above the horizon, looking at it.
    """
    if scene.camera_c2w is not None:
        pose = np.array(scene.camera_c2w, dtype=np.float64)
        pose[:3, :3] = orthonormalize_rotation(pose[:3, :3])
        pose[3] = [0.0, 0.0, 0.0, 1.0]
        return pose
    target, size = np.zeros(3), 0.0
    if scene.subjects:
        subject = scene.subjects[0]
        target = 0.5 * (subject.bbox_min + subject.bbox_max)
        size = float(np.linalg.norm(subject.bbox_max - subject.bbox_min))
    distance = max(DEFAULT_DISTANCE, 2.5 * size)
    offset = np.array([0.0, -np.cos(DEFAULT_ELEVATION), np.sin(DEFAULT_ELEVATION)])
    return _look_at(target + distance * offset, target)


class LearnedPlanner(Planner):
    """ShotVerse's planner: prompts (+ image) -> multi-shot camera paths.

    Args:
        vlm: a Qwen3-VL for conditional generation, usually wrapped by peft with a LoRA adapter.
        model: the planner model (queries, projection, OPT decoder).
        text_tokenizer: the VLM's tokenizer.
        image_processor: the VLM's image processor (None: images are refused).
        vlm_path: the VLM's own folder; None for a VLM that lives only in memory (it is then
            saved inside the planner folder).
        top_p: nucleus sampling mass.
        temperature: sampling temperature (0: greedy).
    """

    name = "learned"

    def __init__(self, vlm: torch.nn.Module, model: TrajectoryPlannerModel, text_tokenizer,
                 image_processor=None, *, vlm_path: str | Path | None = None, top_p: float = 0.9,
                 temperature: float = 1.0):
        self.network = PlannerNetwork(vlm, model)
        self.text_tokenizer = text_tokenizer
        self.image_processor = image_processor
        self.vlm_path = None if vlm_path is None else Path(vlm_path)
        self.top_p = top_p
        self.temperature = temperature

    # -- Construction ------------------------------------------------------------------------

    @staticmethod
    def lora_config(rank: int = 16, alpha: int = 32, dropout: float = 0.05):
        """peft LoRA on the language model's q/k/v/o projections."""
        from peft import LoraConfig

        return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                          target_modules=LORA_TARGET_MODULES)

    @classmethod
    def from_vlm(cls, vlm_path: str | Path, *, lora_rank: int = 16, lora_alpha: int = 32,
                 lora_dropout: float = 0.05, torch_dtype: torch.dtype | None = None,
                 **model_kwargs: Any) -> LearnedPlanner:
        """A new, untrained planner on a local Qwen3-VL folder (model + tokenizer + processor).

        ``model_kwargs`` go to :class:`TrajectoryPlannerModel` (the VLM width is read).
        """
        from peft import get_peft_model
        from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

        vlm_path = Path(vlm_path)
        if not vlm_path.is_dir():
            raise FileNotFoundError(f"--vlm: {vlm_path} is not a folder")
        vlm = Qwen3VLForConditionalGeneration.from_pretrained(vlm_path, dtype=torch_dtype)
        vlm = get_peft_model(vlm, cls.lora_config(lora_rank, lora_alpha, lora_dropout))
        model = TrajectoryPlannerModel(vlm_hidden_size=vlm.config.text_config.hidden_size,
                                       **model_kwargs)
        return cls(vlm, model, AutoTokenizer.from_pretrained(vlm_path),
                   _image_processor(vlm_path), vlm_path=vlm_path.resolve())

    @classmethod
    def tiny(cls, seed: int = 0, *, lora_rank: int = 4, **model_kwargs: Any) -> LearnedPlanner:
        """A randomly initialised planner small enough for CPU tests (tiny Qwen3-VL + decoder)."""
        from peft import get_peft_model

        vlm, tokenizer, processor = tiny_vlm(seed=seed)
        vlm = get_peft_model(vlm, cls.lora_config(lora_rank, 2 * lora_rank, 0.0))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = TrajectoryPlannerModel(vlm_hidden_size=vlm.config.text_config.hidden_size,
                                           **{**TINY_MODEL, **model_kwargs})
        return cls(vlm, model, tokenizer, processor)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | torch.device | None = None,
                        torch_dtype: torch.dtype | None = None, trainable: bool = False
                        ) -> LearnedPlanner:
        """Load a planner folder written by :meth:`save_pretrained`.

        device: None = the first GPU if there is one, else the CPU. torch_dtype: the VLM's
        dtype (None: as stored). trainable: keep the LoRA adapter trainable (to resume training).
        """
        from peft import PeftModel
        from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

        path = Path(path)
        config_path = path / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"{path}: not a learned planner folder (no {CONFIG_NAME})")
        config = json.loads(config_path.read_text())
        if config.get("format") != FORMAT or config.get("version") != VERSION:
            raise ValueError(f"{config_path}: format/version: expected {FORMAT} {VERSION}, got "
                             f"{config.get('format')} {config.get('version')}")
        vlm_path = Path(config["vlm"])
        own_vlm = not vlm_path.is_absolute()
        vlm_path = path / vlm_path if own_vlm else vlm_path
        if not vlm_path.is_dir():
            raise FileNotFoundError(f"{config_path}: vlm: the VLM folder {vlm_path} is missing")
        vlm = Qwen3VLForConditionalGeneration.from_pretrained(vlm_path, dtype=torch_dtype)
        vlm = PeftModel.from_pretrained(vlm, path / LORA_FOLDER, is_trainable=trainable)
        model = TrajectoryPlannerModel.from_pretrained(path / MODEL_FOLDER)
        planner = cls(vlm, model, AutoTokenizer.from_pretrained(vlm_path),
                      _image_processor(vlm_path), vlm_path=None if own_vlm else vlm_path,
                      top_p=config.get("top_p", 0.9), temperature=config.get("temperature", 1.0))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        planner.network.to(device)
        planner.network.train(trainable)
        return planner

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the planner folder: planner.json, model/, vlm_lora/ (and vlm/ for an in-memory
        VLM). Only the main process of a distributed run should call this."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        vlm = self.network.vlm
        self.network.planner.save_pretrained(path / MODEL_FOLDER)
        vlm.save_pretrained(path / LORA_FOLDER)
        if self.vlm_path is None:
            own = path / OWN_VLM_FOLDER
            base = copy.deepcopy(vlm).unload() if hasattr(vlm, "unload") else vlm
            base.save_pretrained(own)
            self.text_tokenizer.save_pretrained(own)
            if self.image_processor is not None:
                self.image_processor.save_pretrained(own)
        config = {"format": FORMAT, "version": VERSION,
                  "vlm": OWN_VLM_FOLDER if self.vlm_path is None else str(self.vlm_path),
                  "top_p": self.top_p, "temperature": self.temperature}
        (path / CONFIG_NAME).write_text(json.dumps(config, indent=1) + "\n")
        return path

    # -- Pieces shared with training ---------------------------------------------------------

    @property
    def model(self) -> TrajectoryPlannerModel:
        return self.network.planner

    @property
    def tokenizer(self) -> TrajectoryTokenizer:
        """The trajectory tokenizer of the planner model."""
        return self.model.trajectory_tokenizer

    @property
    def device(self) -> torch.device:
        return self.model.device

    def prompt_inputs(self, prompt: str, shot_prompts: list[str],
                      image: np.ndarray | None = None) -> PromptInputs:
        """The hierarchical VLM prompt of one request (or one training sequence)."""
        if len(shot_prompts) > self.model.config.max_shots:
            raise PlanRequestError(f"shots: the learned planner plans at most "
                                   f"{self.model.config.max_shots} shots, got "
                                   f"{len(shot_prompts)}")
        if image is not None:
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[-1] not in (3, 4):
                raise PlanRequestError(f"image: expected (H, W, 3) uint8, got {image.shape}")
            image = image[..., :3]
        return build_prompt_inputs(self.text_tokenizer, self.network.vlm.config, prompt,
                                   shot_prompts, self.model.config.num_query_tokens, image,
                                   self.image_processor)

    def collate(self, items: list[PromptInputs]) -> dict[str, torch.Tensor | None]:
        """A batch of prompts on the planner's device."""
        pad = self.text_tokenizer.pad_token_id or 0
        return {key: None if value is None else value.to(self.device)
                for key, value in collate_prompts(items, pad).items()}

    # -- Planning ----------------------------------------------------------------------------

    @torch.no_grad()
    def generate_tokens(self, request: PlanRequest) -> np.ndarray:
        """Sample the trajectory tokens of ``request`` (deterministic for ``request.seed``)."""
        inputs = self.prompt_inputs(request.prompt, [shot.prompt for shot in request.shots],
                                    request.image)
        self.network.eval()
        codes = self.model.encode_prompts(vlm_backbone(self.network.vlm),
                                          self.collate([inputs]))[0]
        generator = torch.Generator().manual_seed(request.seed)
        return self.model.generate(codes, self.tokenizer.template(len(request.shots)),
                                   generator, self.top_p, self.temperature)

    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan every shot of ``request``; deterministic for ``request.seed``."""
        scene = request.scene or SceneContext()
        tokens = self.generate_tokens(request)
        width, height = scene.resolution
        trajectory = self.tokenizer.decode(tokens, aspect=width / height)
        sequence = trajectory_to_sequence(trajectory, request, scene)
        warnings: list[str] = []
        sequence.metadata["planner"] = {"name": self.name, "seed": request.seed,
                                        "top_p": self.top_p, "temperature": self.temperature,
                                        "warnings": warnings}
        return PlanResult(sequence.validate(), warnings)


def trajectory_to_sequence(trajectory: Trajectory, request: PlanRequest,
                           scene: SceneContext) -> ShotSequence:
    """Decoded keyframes -> a ShotSequence in the scene's world and timeline.

    Frame 0 of the first shot lands on :func:`scene_origin`; each shot is upsampled to
    ``round(duration * fps)`` frames (at least 2); shots follow each other from
    ``scene.frame_start``; intrinsics have the principal point at the image centre.
    """
    # The first keyframe is the origin of the relative frame; re-basing on its decoded pose
    # removes its quantisation offset, so frame 0 of the plan is exactly the scene origin.
    first = trajectory.shots[0].c2w[0].copy()
    first[:3, 3] *= trajectory.scale
    origin = scene_origin(scene) @ inverse(first)
    width, height = scene.resolution
    shots = []
    frame = scene.frame_start
    for i, (prompt, planned) in enumerate(zip(request.shots, trajectory.shots, strict=True)):
        name = prompt.name or f"shot_{10 * (i + 1):03d}"
        c2w, focal = upsample_shot(planned, round(planned.duration * scene.fps))
        c2w[:, :3, 3] *= trajectory.scale
        c2w = origin @ c2w
        c2w[:, :3, :3] = orthonormalize_rotation(c2w[:, :3, :3])
        count = len(c2w)
        K = np.stack([focal[:, 0] * width, focal[:, 1] * height,
                      np.full(count, width / 2), np.full(count, height / 2)], axis=-1)
        shots.append(Shot(name=name, camera=f"{name}_cam", frame_start=frame,
                          frame_end=frame + count - 1, c2w=c2w, K=K, prompt=prompt.prompt))
        frame += count
    return ShotSequence(fps=scene.fps, resolution=scene.resolution, shots=shots,
                        prompt=request.prompt, metadata={})


def _image_processor(vlm_path: Path):
    """The VLM folder's image processor, or None when it has none."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(vlm_path)
    except (OSError, ValueError):
        return None
