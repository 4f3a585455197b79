"""The ``trajectory-controlnet`` generator: Image Conductor on AnimateDiff, driven by the shots.

Every requested shot becomes flow maps (:func:`backend.conditioning.trajectories.
trajectory_condition`): ``camera`` from the sequence's static scene points seen through the shot
camera, ``object`` from the subjects' 2D tracks. Which LoRAs read them follows the paper's split:

- only the camera moves the scene points: the camera map, camera LoRA;
- subjects move and the camera holds still (scene points present, their map all zero): the
  object map, object LoRA, and camera-free guidance (Eq. 5, ``camera_free_guidance_scale``) so
  that several subjects' tracks do not turn into a camera move;
- both: the sum of the maps, both LoRAs at weight 1;
- nothing moves: an all-zero map, no LoRA.

The request's image conditions the first shot's first frame through SparseCtrl RGB (when that
ControlNet is configured: key ``image_controlnet``, optional). Weights are read from local folders
only (:mod:`backend.generators.weights`); until they are all there the model answers 503 with the
list of what is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.generators.base import (
    CancelledCallback,
    GeneratedVideo,
    GenerationCancelled,
    GenerationRequest,
    GenerationRequestError,
    ProgressCallback,
)
from backend.generators.weights import ModelsConfig, TrajectoryControlNetGenerator

PipelineFactory = Callable[[str], Any]
"""``factory(device) -> TrajectoryControlNetPipeline``: builds the pipeline on ``device``."""


@dataclass
class TrajectorySettings:
    """Defaults of the generator (Image Conductor's: 384 x 256, 16 frames, 25 DDIM steps)."""

    width: int = 384
    """Output width when the request gives none."""
    height: int = 256
    """Output height when the request gives none."""
    num_frames: int = 16
    """Frames per shot when the request gives none."""
    num_inference_steps: int = 25
    """DDIM steps when the request gives none."""
    guidance_scale: float = 8.5
    """Classifier-free guidance scale (lambda_cfg)."""
    camera_free_guidance_scale: float = 1.2
    """lambda_trajs of camera-free guidance, used for shots whose camera holds still."""
    fps: float = 8.0
    """Playback rate (AnimateDiff's clips are 8 fps)."""
    max_frames: int = 32
    """Most frames per shot: AnimateDiff's motion modules hold 32 positions."""
    size_multiple: int = 8
    """Width and height must be multiples of the VAE's 8x."""


class TrajectoryGenerator(TrajectoryControlNetGenerator):
    """Image Conductor (motion ControlNet + camera/object LoRAs) on AnimateDiff; see the module."""

    implemented = True

    def __init__(self, config: ModelsConfig, settings: TrajectorySettings | None = None,
                 pipeline_factory: PipelineFactory | None = None) -> None:
        super().__init__(config)
        self.settings = settings or TrajectorySettings()
        self._factory = pipeline_factory
        self._pipelines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        if self._factory is not None:
            return True, f"{self.name}: pipeline given in code"
        ok, message = super().available()
        if not ok:
            return ok, message
        folders = ", ".join(str(self.config.folder(self.name, c.key)[0]) for c in self.components)
        return True, f"{self.name}: Image Conductor on AnimateDiff, weights from {folders}"

    def _load_from_folders(self, device: str) -> Any:
        import torch

        from backend.pipelines.trajectory_controlnet import TrajectoryControlNetPipeline

        ok, message = self.available()
        if not ok:
            raise RuntimeError(message)
        folder = {c.key: self.config.folder(self.name, c.key)[0] for c in self.components}
        image_folder = self.config.folder(self.name, "image_controlnet")[0]
        image = image_folder if (image_folder / "config.json").is_file() else None
        # Device and dtype are decided here, once: half precision on GPUs.
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        pipeline = TrajectoryControlNetPipeline.from_folders(
            folder["path"], folder["motion_adapter"], folder["controlnet"], image,
            torch_dtype=dtype)
        return pipeline.to(device)

    def _pipeline(self, device: str) -> Any:
        with self._lock:
            if device not in self._pipelines:
                factory = self._factory or self._load_from_folders
                self._pipelines[device] = factory(device)
            return self._pipelines[device]

    def load(self, device: str = "cpu") -> None:
        self._pipeline(device)

    def unload(self) -> bool:
        with self._lock:
            loaded = bool(self._pipelines)
            self._pipelines.clear()
        return loaded

    def output_size(self, request: GenerationRequest) -> tuple[int, int, int]:
        """``(width, height, num_frames)`` of each shot."""
        options = request.options
        return (options.width or self.settings.width, options.height or self.settings.height,
                options.num_frames or self.settings.num_frames)

    def check_request(self, request: GenerationRequest) -> None:
        width, height, num_frames = self.output_size(request)
        multiple = self.settings.size_multiple
        for key, value in (("width", width), ("height", height)):
            if value % multiple:
                raise GenerationRequestError(f"options.{key}", f"{value} is not a multiple of "
                                                               f"{multiple} (the VAE's 8x)")
        if not 1 < num_frames <= self.settings.max_frames:
            raise GenerationRequestError(
                "options.num_frames", f"{num_frames} is outside 2..{self.settings.max_frames} "
                                      "(AnimateDiff's motion modules)")

    def shot_condition(self, request: GenerationRequest, shot_name: str
                       ) -> tuple[Any, list[str], float | None]:
        """``(flow_maps (F, 2, H, W), adapter names, lambda_trajs or None)`` of one shot; see
        the module docstring for the rule."""
        from backend.conditioning.trajectories import trajectory_condition

        width, height, num_frames = self.output_size(request)
        maps = trajectory_condition(request.sequence, shot_name, num_frames, height, width,
                                    seed=request.options.seed)
        camera, subjects = maps["camera"], maps["object"]
        camera_moves = bool(camera.abs().amax() > 0)
        subjects_move = bool(subjects.abs().amax() > 0)
        if camera_moves and subjects_move:
            return camera + subjects, ["camera", "object"], None
        if camera_moves:
            return camera, ["camera"], None
        if subjects_move:
            static_camera = request.sequence.scene_points is not None
            scale = self.settings.camera_free_guidance_scale if static_camera else None
            return subjects, ["object"], scale
        return subjects, [], None

    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        """One clip per requested shot, concatenated; progress after every denoising step."""
        import torch

        self.check_request(request)
        pipeline = self._pipeline(request.device)
        steps = request.options.num_inference_steps or self.settings.num_inference_steps
        noise = torch.Generator(request.device).manual_seed(request.options.seed)
        loaded = set(getattr(pipeline.controlnet, "peft_config", {}) or {})
        total = len(request.shots) * steps
        clips: list[np.ndarray] = []
        ranges: list[tuple[str, int, int]] = []
        for k, shot_name in enumerate(request.shots):
            if cancelled():
                raise GenerationCancelled
            flows, adapters, trajectory_scale = self.shot_condition(request, shot_name)
            adapters = [name for name in adapters if name in loaded]
            if not adapters:
                trajectory_scale = None

            def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: dict, k: int = k,
                            shot_name: str = shot_name) -> dict:
                progress((k * steps + step + 1) / total,
                         f"{shot_name}: denoising step {step + 1}/{steps}")
                if cancelled():
                    pipe._interrupt = True  # the loop skips the remaining steps
                return kwargs

            shot = request.sequence.shot(shot_name)
            prompt = " ".join(p for p in (request.sequence.prompt, shot.prompt) if p) or "a shot"
            image = request.image if (k == 0 and pipeline.image_controlnet is not None) else None
            frames = pipeline(
                prompt, flows, image=image, num_inference_steps=steps,
                guidance_scale=self.settings.guidance_scale, adapter_names=adapters,
                trajectory_guidance_scale=trajectory_scale, generator=noise,
                callback_on_step_end=on_step_end, output_type="np").frames[0]
            if cancelled():
                raise GenerationCancelled
            clips.append((np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
            start = sum(len(clip) for clip in clips[:-1])
            ranges.append((shot_name, start, start + len(clips[-1]) - 1))
        return GeneratedVideo(frames=np.concatenate(clips), fps=self.settings.fps,
                              shot_ranges=ranges)
