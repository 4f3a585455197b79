"""The ``camera-dit`` generator: Wan 2.1/2.2 + ShotBridge's camera encoder, driven by the shots.

Weights come from local folders only (:mod:`backend.generators.weights`, ``models.toml``)::

    [models.camera-dit]
    path = "/models/Wan2.2-T2V-A14B-Diffusers"       # any Wan folder in diffusers layout
    camera_encoder = "/models/shotbridge-camera-high"  # train controller --stage high
    camera_encoder_2 = "/models/shotbridge-camera-low" # optional: --stage low

``path`` is loaded with :meth:`DiffusionPipeline.from_pretrained` (T2V or I2V, Wan 2.1 or 2.2);
``camera_encoder`` is a folder written by
:meth:`~backend.models.camera_dit.CameraDiTModel.save_camera_pretrained` (config, camera weights,
LoRA) and goes onto the base ``transformer``. The low-noise expert is ``transformer_2`` of a Wan
2.2 base, with the camera weights of ``camera_encoder`` (frozen in the low stage, as in
ShotVerse) or, when given, the folder ``camera_encoder_2``; with a Wan 2.1 base,
``camera_encoder_2`` puts the low-stage LoRA on a second copy of the transformer, used below the
0.875 boundary. Every requested shot becomes one ``4k + 1``-frame clip of one jointly denoised
video (:mod:`backend.pipelines.camera_dit`); the request's image is the first frame for
image-to-video bases.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.generators.base import (
    CancelledCallback,
    GeneratedVideo,
    GenerationCancelled,
    GenerationRequest,
    GenerationRequestError,
    ProgressCallback,
    check_wan_num_frames,
)
from backend.generators.weights import CameraDiTGenerator as CameraDiTWeights
from backend.generators.weights import ModelsConfig

SIZE_MULTIPLE = 16  # Wan's VAE stride 8 x patch 2


@dataclass
class CameraDiTSettings:
    """Defaults of the generator (Wan 2.1/2.2 480p)."""

    width: int = 832
    """Output width when the request gives none."""
    height: int = 480
    """Output height when the request gives none."""
    num_inference_steps: int = 40
    """Denoising steps when the request gives none."""
    guidance_scale: float = 5.0
    """Classifier-free guidance scale (the high-noise expert's with two experts)."""
    guidance_scale_2: float | None = None
    """CFG scale of the low-noise expert; ``None``: the same."""
    fps: float = 16.0
    """Frame rate of the output, and of converting shot durations to frame counts."""
    negative_prompt: str = ""
    """Prompt of CFG's unconditional branch."""
    max_sequence_length: int = 512
    """Prompt tokens each shot reads (global + its own)."""
    cpu_offload: bool = False
    """Keep models on the CPU and move each to the GPU while it runs (diffusers' model offload)."""


def _camera_config(model: Any) -> dict[str, Any]:
    from backend.models.camera_dit import WAN_CONFIG_KEYS

    return {key: value for key, value in model.config.items()
            if key not in WAN_CONFIG_KEYS and not key.startswith("_")}


def load_camera_dit_pipeline(base: str | Path, camera_encoder: str | Path,
                             camera_encoder_2: str | Path | None = None,
                             torch_dtype: Any = None) -> Any:
    """A :class:`~backend.pipelines.camera_dit.CameraDiTPipeline` from local folders (see the
    module docstring), on the CPU."""
    from diffusers import DiffusionPipeline

    from backend.models.camera_dit import CameraDiTModel
    from backend.pipelines.camera_dit import CameraDiTPipeline

    wan = DiffusionPipeline.from_pretrained(base, dtype=torch_dtype)
    parts = wan.components
    transformer = CameraDiTModel.from_camera_pretrained(camera_encoder, parts["transformer"])
    base_2 = parts.get("transformer_2")
    transformer_2 = None
    if camera_encoder_2 is not None:
        transformer_2 = CameraDiTModel.from_camera_pretrained(
            camera_encoder_2, base_2 if base_2 is not None else parts["transformer"])
    elif base_2 is not None:
        transformer_2 = CameraDiTModel.from_wan(base_2, **_camera_config(transformer))
        transformer_2.load_state_dict(transformer.camera_state_dict(), strict=False)
    del wan
    return CameraDiTPipeline(
        tokenizer=parts["tokenizer"], text_encoder=parts["text_encoder"], vae=parts["vae"],
        scheduler=parts["scheduler"], transformer=transformer.eval(),
        transformer_2=None if transformer_2 is None else transformer_2.eval(),
        image_encoder=parts.get("image_encoder"), image_processor=parts.get("image_processor"),
        boundary_ratio=None if transformer_2 is None else _boundary_ratio(base))


def _boundary_ratio(base: str | Path) -> float | None:
    """The base folder's ``boundary_ratio`` (Wan 2.2), else ``None`` (the pipeline's 0.875)."""
    import json

    index = json.loads((Path(base) / "model_index.json").read_text())
    return index.get("boundary_ratio")


class CameraDiTGenerator(CameraDiTWeights):
    """Multi-shot camera-controlled Wan (ShotVerse's controller); see the module docstring."""

    implemented = True

    def __init__(self, config: ModelsConfig, settings: CameraDiTSettings | None = None) -> None:
        super().__init__(config)
        self.settings = settings or CameraDiTSettings()
        self._pipelines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        ok, message = super().available()
        if ok:
            folders = ", ".join(str(self.config.folder(self.name, c.key)[0])
                                for c in self.components)
            message = f"{self.name}: Wan + camera encoder ({folders})"
        return ok, message

    def _folder_2(self) -> Path | None:
        folder, _ = self.config.folder(self.name, "camera_encoder_2")
        return folder if (folder / "config.json").is_file() else None

    def load(self, device: str = "cpu") -> None:
        self._pipeline(device)

    def _pipeline(self, device: str) -> Any:
        import torch

        with self._lock:
            if device not in self._pipelines:
                missing = self.missing()
                if missing:
                    raise RuntimeError(f"{self.name} weights are missing: " + "; ".join(missing))
                dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
                pipeline = load_camera_dit_pipeline(
                    self.config.folder(self.name, "path")[0],
                    self.config.folder(self.name, "camera_encoder")[0], self._folder_2(),
                    torch_dtype=dtype)
                pipeline.set_progress_bar_config(disable=True)
                if self.settings.cpu_offload and device != "cpu":
                    pipeline.enable_model_cpu_offload(device=device)
                else:
                    pipeline.to(device)
                self._pipelines[device] = pipeline
            return self._pipelines[device]

    def unload(self) -> bool:
        with self._lock:
            loaded = bool(self._pipelines)
            self._pipelines.clear()
        return loaded

    def output_size(self, request: GenerationRequest) -> tuple[int, int]:
        """``(width, height)``: as requested, else the defaults."""
        return (request.options.width or self.settings.width,
                request.options.height or self.settings.height)

    def check_request(self, request: GenerationRequest) -> None:
        if not request.shots:
            raise GenerationRequestError("shots", "no shots to generate")
        width, height = self.output_size(request)
        for key, value in (("width", width), ("height", height)):
            if value <= 0 or value % SIZE_MULTIPLE:
                raise GenerationRequestError(
                    f"options.{key}", f"{value} is not a positive multiple of {SIZE_MULTIPLE} "
                                      "(Wan's VAE and patch size)")
        check_wan_num_frames(request.options.num_frames)

    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        """All requested shots as one jointly denoised video; progress after every step."""
        import torch

        self.check_request(request)
        pipeline = self._pipeline(request.device)
        width, height = self.output_size(request)
        steps = request.options.num_inference_steps or self.settings.num_inference_steps
        image = request.image if pipeline.is_image_to_video else None
        if pipeline.is_image_to_video and image is None:
            raise GenerationRequestError("image", "this camera-dit base is image-to-video: send "
                                                  "the first frame")
        note = "" if image is not None or request.image is None else (
            " (text-to-video model: first frame ignored)")
        noise_device = "cpu" if self.settings.cpu_offload else request.device
        noise = torch.Generator(noise_device).manual_seed(request.options.seed)

        def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
            progress((step + 1) / (steps + 1), f"denoising step {step + 1}/{steps}{note}")
            if cancelled():
                pipe._interrupt = True  # the loop skips the remaining steps, nothing is decoded
            return callback_kwargs

        if cancelled():
            raise GenerationCancelled
        try:
            output = pipeline(
                sequence=request.sequence, shots=request.shots, image=image, height=height,
                width=width, num_frames_per_shot=request.options.num_frames,
                fps=self.settings.fps, num_inference_steps=steps,
                guidance_scale=self.settings.guidance_scale,
                guidance_scale_2=self.settings.guidance_scale_2,
                negative_prompt=self.settings.negative_prompt, generator=noise,
                max_sequence_length=self.settings.max_sequence_length,
                callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=[],
                output_type="np")
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            raise GenerationRequestError(_request_field(field), message or str(error)) from None
        if output.frames is None or cancelled():
            raise GenerationCancelled
        frames = (np.clip(output.frames[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        progress(1.0, "decoded")
        return GeneratedVideo(frames=frames, fps=self.settings.fps,
                              shot_ranges=list(output.shot_ranges))


def _request_field(argument: str) -> str:
    """The request field a pipeline argument comes from (``num_frames_per_shot`` ->
    ``options.num_frames``)."""
    return {"num_frames_per_shot": "options.num_frames", "height": "options.height",
            "width": "options.width", "height/width": "options.width",
            "shots": "shots", "image": "image"}.get(argument, argument)
