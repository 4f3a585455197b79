"""Multi-shot, camera-controlled Wan video generation (ShotVerse's controller, §3.3).

:class:`CameraDiTPipeline` runs diffusers' Wan components (``AutoencoderKLWan``, the UMT5 text
encoder, a flow-matching scheduler) around :class:`~backend.models.camera_dit.CameraDiTModel`:

- **Shots along time.** Every shot is its own ``4k + 1``-frame clip (its length snapped to Wan's
  frame grid); the clips' latents are concatenated along latent time into one sequence that the
  transformer denoises jointly (4D RoPE shot ids, window cross-attention on per-shot prompts), and
  each shot is decoded by the VAE on its own. This is the layout
  :func:`~backend.models.camera_dit.camera_features_from_shots` assumes: no latent frame
  straddles a cut, and a cut costs no frames.
- **Camera.** Each shot's poses are resampled to its frame count through the camera core
  (:func:`~backend.camera.resample.resample_shot`), made relative to frame 0 of the first shot
  (one shared frame, so cuts keep their spatial relation) and packed into per-latent-frame
  features.
- **Prompts.** The global prompt and every shot's prompt are encoded into ``max_sequence_length
  // 2`` tokens each; shot ``k`` reads the global prompt + its own prompt, a window of
  ``max_sequence_length`` tokens, the length Wan was trained on.
- **Two experts (Wan 2.2).** ``transformer`` (high noise, with the trained camera encoder) runs
  while ``t >= boundary_ratio * num_train_timesteps``, ``transformer_2`` (low noise) after;
  without ``transformer_2`` (Wan 2.1) ``transformer`` runs every step.
- **Image to video.** As diffusers' ``WanImageToVideoPipeline`` (0.42) does for transformers with
  ``in_channels = 2 * z_dim + 4``: the first frame, VAE-encoded, and a frame mask are concatenated
  to the latents on the channel axis (Wan 2.1 I2V additionally reads CLIP image tokens from
  ``image_encoder``; Wan 2.2 I2V A14B has none). The image conditions the first shot's first
  frame; later shots get an empty condition. Wan 2.2 TI2V's ``expand_timesteps`` mode is not
  supported. A text-to-video transformer refuses an image.

An interrupted run (``pipe._interrupt`` set from ``callback_on_step_end``) skips the remaining
steps and is not decoded: its ``frames`` are ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.pipelines.wan.pipeline_wan import prompt_clean
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import AutoTokenizer, UMT5EncoderModel

from backend.camera.resample import resample_shot, times_for_count, wan_num_frames
from backend.models.camera_dit import GLOBAL_PROMPT_ID, CameraDiTModel, camera_features_from_shots
from backend.shots import Shot, ShotSequence

if TYPE_CHECKING:  # Wan 2.1 I2V only; importing them warns without torchvision
    from transformers import CLIPImageProcessor, CLIPVisionModel

DEFAULT_BOUNDARY_RATIO = 0.875  # Wan 2.2's switch from the high- to the low-noise expert


@dataclass
class CameraDiTPipelineOutput(BaseOutput):
    """Output of :class:`CameraDiTPipeline`.

    Args:
        frames: the shots one after another: ``np`` (B, F, H, W, 3) floats in 0..1, ``pt``
            (B, F, 3, H, W), ``latent`` (B, C, F_latent, h, w); ``None`` when interrupted.
        shot_ranges: ``(shot name, first frame, last frame)``, inclusive, in the output's frames
            (latent frames for ``output_type="latent"``).
    """

    frames: torch.Tensor | np.ndarray | None
    shot_ranges: list[tuple[str, int, int]]


@dataclass(frozen=True)
class ShotLayout:
    """Where every shot lies along time: each a ``4k + 1``-frame clip, in order."""

    names: tuple[str, ...]
    """Shot names, in generation order."""
    num_frames: tuple[int, ...]
    """Video frames of each shot (``4k + 1``)."""
    temporal_compression: int = 4
    """Video frames per latent frame after the first (Wan's VAE: 4)."""

    @property
    def latent_frames(self) -> tuple[int, ...]:
        return tuple((n - 1) // self.temporal_compression + 1 for n in self.num_frames)

    @staticmethod
    def _ranges(names: Sequence[str], counts: Sequence[int]) -> list[tuple[str, int, int]]:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
        return [(name, int(s), int(s + n - 1)) for name, s, n in zip(names, starts, counts,
                                                                       strict=True)]

    @property
    def shot_ranges(self) -> list[tuple[str, int, int]]:
        """``(name, first, last)`` video frames, inclusive."""
        return self._ranges(self.names, self.num_frames)

    @property
    def latent_ranges(self) -> list[tuple[str, int, int]]:
        """``(name, first, last)`` latent frames, inclusive."""
        return self._ranges(self.names, self.latent_frames)


def shot_frame_counts(
    shots: Sequence[Shot], source_fps: float, fps: float,
    num_frames_per_shot: int | Sequence[int] | None = None, temporal_compression: int = 4,
) -> list[int]:
    """Frames to generate per shot: as given (each ``4k + 1``), or the shot's duration at ``fps``
    snapped to the nearest ``4k + 1``. ValueError naming ``num_frames_per_shot`` otherwise."""
    if num_frames_per_shot is None:
        return [wan_num_frames(max(1, round(shot.num_frames * fps / source_fps)))
                for shot in shots]
    counts = ([num_frames_per_shot] * len(shots) if isinstance(num_frames_per_shot, int)
              else list(num_frames_per_shot))
    if len(counts) != len(shots):
        raise ValueError(f"num_frames_per_shot has {len(counts)} entries for {len(shots)} shots")
    for count in counts:
        if count < 1 or (count - 1) % temporal_compression:
            raise ValueError(f"num_frames_per_shot: {count} is not {temporal_compression}k + 1 "
                             f"(Wan's VAE compresses time {temporal_compression}x after the first "
                             "frame); e.g. 17, 33, 49, 81")
    return counts


def shot_camera_features(shots: Sequence[Shot], counts: Sequence[int]) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Resample each shot's poses to its frame count and pack them for the camera encoder.

    Returns ``(features (F_latent, 48), shot_ids (F_latent,))``, poses relative to frame 0 of the
    first shot.
    """
    poses = [resample_shot(shot.c2w, shot.K, times_for_count(shot.num_frames, count))[0]
             for shot, count in zip(shots, counts, strict=True)]
    return camera_features_from_shots(poses)


class CameraDiTPipeline(DiffusionPipeline):
    r"""Text/image-to-video with camera control over several shots (see the module docstring).

    Args:
        tokenizer: UMT5 tokenizer.
        text_encoder: UMT5 encoder.
        vae: Wan's video VAE.
        scheduler: flow-matching scheduler (``FlowMatchEulerDiscreteScheduler`` or UniPC).
        transformer: the camera model; the high-noise expert when ``transformer_2`` is given.
        transformer_2: the low-noise expert (Wan 2.2), or ``None``.
        image_encoder, image_processor: CLIP for Wan 2.1 I2V, else ``None``.
        boundary_ratio: switch to ``transformer_2`` once ``t < boundary_ratio *
            num_train_timesteps``; defaults to 0.875 when ``transformer_2`` is given.
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->transformer->transformer_2->vae"
    _callback_tensor_inputs: ClassVar[list[str]] = [
        "latents", "prompt_embeds", "negative_prompt_embeds"]
    _optional_components: ClassVar[list[str]] = [
        "transformer_2", "image_encoder", "image_processor"]

    def __init__(
        self,
        tokenizer: AutoTokenizer,
        text_encoder: UMT5EncoderModel,
        vae: AutoencoderKLWan,
        scheduler: FlowMatchEulerDiscreteScheduler,
        transformer: CameraDiTModel,
        transformer_2: CameraDiTModel | None = None,
        image_encoder: CLIPVisionModel | None = None,
        image_processor: CLIPImageProcessor | None = None,
        boundary_ratio: float | None = None,
    ):
        super().__init__()
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                              scheduler=scheduler, transformer=transformer,
                              transformer_2=transformer_2, image_encoder=image_encoder,
                              image_processor=image_processor)
        if boundary_ratio is None and transformer_2 is not None:
            boundary_ratio = DEFAULT_BOUNDARY_RATIO
        self.register_to_config(boundary_ratio=boundary_ratio)
        self.vae_scale_factor_temporal = vae.config.scale_factor_temporal
        self.vae_scale_factor_spatial = vae.config.scale_factor_spatial
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)
        self._interrupt = False

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this: VAE stride x patch size (8 x 2)."""
        return self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]

    @property
    def is_image_to_video(self) -> bool:
        """Whether the transformer takes a first-frame condition on its channels."""
        return self.transformer.config.in_channels > self.vae.config.z_dim

    # ---- inputs ---------------------------------------------------------------------------

    def check_inputs(
        self,
        sequence: ShotSequence | None,
        shots: Sequence[str] | None,
        shot_prompts: Sequence[str] | None,
        image: Any,
        height: int,
        width: int,
        num_frames_per_shot: int | Sequence[int] | None,
        max_sequence_length: int,
        callback_on_step_end_tensor_inputs: Sequence[str] | None,
    ) -> list[Shot]:
        """Validate the arguments; returns the shots to generate. ValueError names the argument."""
        if not isinstance(sequence, ShotSequence):
            raise ValueError(f"sequence: expected a ShotSequence, got {type(sequence).__name__}")
        names = [shot.name for shot in sequence.shots] if shots is None else list(shots)
        if not names:
            raise ValueError("shots: the list of shots to generate is empty")
        try:
            selected = [sequence.shot(name) for name in names]
        except KeyError as error:
            raise ValueError(f"shots: {error.args[0]}") from None
        max_shots = self.transformer.config.rope_max_shots
        if len(selected) > max_shots:
            raise ValueError(f"shots: {len(selected)} shots, but the model takes at most "
                             f"{max_shots} (rope_max_shots)")
        if shot_prompts is not None and len(shot_prompts) != len(selected):
            raise ValueError(f"shot_prompts: {len(shot_prompts)} prompts for {len(selected)} "
                             "shots")
        multiple = self.size_multiple
        for key, value in (("height", height), ("width", width)):
            if value <= 0 or value % multiple:
                raise ValueError(f"{key}: {value} is not a positive multiple of {multiple} (Wan's "
                                 f"VAE stride {self.vae_scale_factor_spatial} x patch size)")
        max_len = self.transformer.config.rope_max_seq_len
        if max(height, width) // multiple > max_len:
            raise ValueError(f"height/width: {height}x{width} exceeds the model's positions "
                             f"({max_len} patches per axis)")
        if max_sequence_length < 2 or max_sequence_length % 2:
            raise ValueError(f"max_sequence_length: {max_sequence_length} must be even")
        if image is None and self.is_image_to_video:
            raise ValueError("image: this transformer is image-to-video; give the first frame")
        if image is not None and not self.is_image_to_video:
            raise ValueError("image: this transformer is text-to-video (in_channels = z_dim); "
                             "use a Wan image-to-video base model for a first-frame condition")
        if image is not None:
            expected = 2 * self.vae.config.z_dim + self.vae_scale_factor_temporal
            if self.transformer.config.in_channels != expected:
                raise ValueError(f"image: transformer in_channels "
                                 f"{self.transformer.config.in_channels} is not the "
                                 f"{expected} of Wan's image-to-video conditioning")
        unknown = set(callback_on_step_end_tensor_inputs or ()) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs: {sorted(unknown)} not in "
                             f"{self._callback_tensor_inputs}")
        return selected

    def encode_texts(self, texts: Sequence[str], max_length: int,
                     device: torch.device) -> torch.Tensor:
        """UMT5 embeddings (len(texts), max_length, D), zero past each text's end (as Wan)."""
        inputs = self.tokenizer([prompt_clean(t) for t in texts], padding="max_length",
                                max_length=max_length, truncation=True, add_special_tokens=True,
                                return_attention_mask=True, return_tensors="pt")
        ids = inputs.input_ids.to(self.text_encoder.device)
        mask = inputs.attention_mask.to(self.text_encoder.device)
        embeds = self.text_encoder(ids, mask).last_hidden_state
        embeds = embeds * mask[..., None].to(embeds.dtype)
        return embeds.to(device)

    def encode_shot_prompts(
        self, prompt: str, shot_prompts: Sequence[str], max_sequence_length: int,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Global + per-shot prompts laid out for window cross-attention.

        Returns ``(embeds (1, (K + 1) * L, D), encoder_shot_ids ((K + 1) * L,))`` with ``L =
        max_sequence_length // 2``: the global prompt's tokens (id -1), then shot 0's, ...
        """
        length = max_sequence_length // 2
        embeds = self.encode_texts([prompt, *shot_prompts], length, device)  # (K + 1, L, D)
        ids = torch.arange(-1, len(shot_prompts), device=device).repeat_interleave(length)
        assert ids[0] == GLOBAL_PROMPT_ID
        return embeds.reshape(1, -1, embeds.shape[-1]), ids

    def encode_image(self, image: PIL.Image.Image, device: torch.device) -> torch.Tensor:
        """CLIP penultimate hidden states (1, 257, image_dim), as Wan 2.1 I2V reads them."""
        pixels = self.image_processor(images=image, return_tensors="pt").to(
            self.image_encoder.device)
        return self.image_encoder(**pixels, output_hidden_states=True).hidden_states[-2].to(device)

    def _normalize(self, latents: torch.Tensor) -> torch.Tensor:
        shape = (1, self.vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.vae.config.latents_mean).view(shape).to(latents)
        std = torch.tensor(self.vae.config.latents_std).view(shape).to(latents)
        return (latents - mean) / std

    def _denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        shape = (1, self.vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.vae.config.latents_mean).view(shape).to(latents)
        std = torch.tensor(self.vae.config.latents_std).view(shape).to(latents)
        return latents * std + mean

    def prepare_latents(
        self, batch_size: int, layout: ShotLayout, height: int, width: int,
        device: torch.device, generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noise (B, z_dim, sum of shots' latent frames, H / 8, W / 8), float32."""
        shape = (batch_size, self.vae.config.z_dim, sum(layout.latent_frames),
                 height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"latents: expected shape {shape}, got {tuple(latents.shape)}")
            return latents.to(device=device, dtype=torch.float32)
        return randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)

    def prepare_image_condition(
        self, image: torch.Tensor, batch_size: int, layout: ShotLayout, device: torch.device,
    ) -> torch.Tensor:
        """Mask + first-frame latents (B, 4 + z_dim, F_latent, h, w), per shot as diffusers' Wan
        I2V builds them; only the first shot's first frame is given.

        image: (1, 3, H, W) in -1..1.
        """
        conditions = []
        for k, num_frames in enumerate(layout.num_frames):
            video = image.new_zeros(1, 3, num_frames, *image.shape[-2:])
            if k == 0:
                video[:, :, 0] = image[0]
            video = video.to(self.vae.device, self.vae.dtype)
            latent = self.vae.encode(video).latent_dist.mode()
            latent = self._normalize(latent.to(device, torch.float32))
            # one mask channel per video frame, 4 frames per latent frame (frame 0 repeated)
            frames = torch.zeros(num_frames, device=device)
            frames[0] = float(k == 0)
            frames = torch.cat([frames[:1].repeat(self.vae_scale_factor_temporal - 1), frames])
            mask = frames.view(-1, self.vae_scale_factor_temporal).T  # (4, F_latent)
            mask = mask[None, :, :, None, None].expand(1, -1, -1, *latent.shape[-2:])
            conditions.append(torch.cat([mask, latent], dim=1))
        return torch.cat(conditions, dim=2).repeat(batch_size, 1, 1, 1, 1)

    def decode_shots(self, latents: torch.Tensor, layout: ShotLayout,
                     output_type: str) -> torch.Tensor | np.ndarray:
        """Decode every shot's latents on their own and concatenate the videos along time."""
        videos = []
        for _, first, last in layout.latent_ranges:
            shot = self._denormalize(latents[:, :, first:last + 1]).to(self.vae.device,
                                                                        self.vae.dtype)
            video = self.vae.decode(shot, return_dict=False)[0]
            videos.append(self.video_processor.postprocess_video(video, output_type=output_type))
        if output_type == "np":
            return np.concatenate(videos, axis=1)
        return torch.cat(videos, dim=1)

    # ---- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        sequence: ShotSequence,
        prompt: str | None = None,
        shot_prompts: Sequence[str] | None = None,
        shots: Sequence[str] | None = None,
        image: PIL.Image.Image | np.ndarray | torch.Tensor | None = None,
        negative_prompt: str = "",
        height: int = 480,
        width: int = 832,
        num_frames_per_shot: int | Sequence[int] | None = None,
        fps: float = 16.0,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        guidance_scale_2: float | None = None,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict]
        | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        max_sequence_length: int = 512,
    ) -> CameraDiTPipelineOutput | tuple:
        r"""Generate the shots of ``sequence`` one after another, each filmed by its camera.

        Args:
            sequence: the ShotSequence (cameras, prompts).
            prompt: global prompt; defaults to ``sequence.prompt``.
            shot_prompts: one prompt per generated shot; defaults to each shot's ``prompt``.
            shots: names of the shots to generate, in order; defaults to all.
            image: first frame of the first shot (image-to-video transformers only).
            negative_prompt: prompt of the unconditional branch of classifier-free guidance.
            height, width: output size, multiples of 16.
            num_frames_per_shot: frames per shot (one ``4k + 1`` count, or one per shot); by
                default each shot's duration at ``fps``, snapped to ``4k + 1``.
            fps: frame rate the shots' durations are converted at (Wan: 16).
            num_inference_steps: denoising steps.
            guidance_scale: CFG scale (of the high-noise expert with two experts).
            guidance_scale_2: CFG scale of the low-noise expert; defaults to ``guidance_scale``.
            num_videos_per_prompt: videos generated at once.
            generator: seeds the noise.
            latents: initial noise (B, z_dim, F_latent, h, w) instead of sampling it.
            output_type: ``"np"``, ``"pt"`` or ``"latent"``.
            return_dict: return a :class:`CameraDiTPipelineOutput` rather than a tuple.
            attention_kwargs: passed to the transformer (``{"scale": lora_scale}``).
            callback_on_step_end: ``f(pipe, step, t, callback_kwargs) -> dict`` after each step;
                setting ``pipe._interrupt = True`` there skips the remaining steps.
            callback_on_step_end_tensor_inputs: tensors handed to the callback.
            max_sequence_length: prompt tokens each shot reads (global + its own, half each).
        """
        # 1. Check inputs
        selected = self.check_inputs(sequence, shots, shot_prompts, image, height, width,
                                     num_frames_per_shot, max_sequence_length,
                                     callback_on_step_end_tensor_inputs)
        counts = shot_frame_counts(selected, sequence.fps, fps, num_frames_per_shot,
                                   self.vae_scale_factor_temporal)
        layout = ShotLayout(tuple(s.name for s in selected), tuple(counts),
                            self.vae_scale_factor_temporal)
        max_len = self.transformer.config.rope_max_seq_len
        if sum(layout.latent_frames) > max_len:
            raise ValueError(f"num_frames_per_shot: {sum(counts)} frames in all "
                             f"({sum(layout.latent_frames)} latent frames) exceed the model's "
                             f"{max_len} positions; generate fewer or shorter shots")
        if self.transformer_2 is not None and guidance_scale_2 is None:
            guidance_scale_2 = guidance_scale
        self._interrupt = False
        device = self._execution_device
        dtype = self.transformer.dtype
        batch_size = num_videos_per_prompt
        do_cfg = guidance_scale > 1.0

        # 2. Encode the global and per-shot prompts
        prompt = sequence.prompt if prompt is None else prompt
        shot_prompts = [s.prompt for s in selected] if shot_prompts is None else shot_prompts
        prompt_embeds, encoder_shot_ids = self.encode_shot_prompts(prompt, shot_prompts,
                                                                   max_sequence_length, device)
        prompt_embeds = prompt_embeds.to(dtype).repeat(batch_size, 1, 1)
        negative_prompt_embeds = None
        if do_cfg:
            negative_prompt_embeds, _ = self.encode_shot_prompts(
                negative_prompt, [negative_prompt] * len(selected), max_sequence_length, device)
            negative_prompt_embeds = negative_prompt_embeds.to(dtype).repeat(batch_size, 1, 1)

        # 3. Camera features: each shot resampled to its frame count, one shared frame
        features, shot_ids = shot_camera_features(selected, counts)
        camera_features = torch.from_numpy(features).to(device, dtype)[None].repeat(
            batch_size, 1, 1)  # (B, F_latent, 48)
        shot_ids = torch.from_numpy(shot_ids).to(device)

        # 4. Latents (and the first-frame condition)
        latents = self.prepare_latents(batch_size, layout, height, width, device, generator,
                                       latents)
        condition, image_embeds = None, None
        if image is not None:
            if isinstance(image, np.ndarray):
                image = PIL.Image.fromarray(np.asarray(image, dtype=np.uint8))
            if self.image_encoder is not None:
                image_embeds = self.encode_image(image, device).to(dtype).repeat(batch_size, 1, 1)
            pixels = self.video_processor.preprocess(image, height=height, width=width)
            condition = self.prepare_image_condition(pixels.to(device, torch.float32),
                                                     batch_size, layout, device).to(dtype)

        # 5. Timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self.scheduler.set_begin_index(0)
        boundary = None
        if self.transformer_2 is not None and self.config.boundary_ratio is not None:
            boundary = self.config.boundary_ratio * self.scheduler.config.num_train_timesteps

        # 6. Denoising loop, the high-noise expert first
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                if boundary is None or t >= boundary:
                    model, scale = self.transformer, guidance_scale
                else:
                    model, scale = self.transformer_2, guidance_scale_2
                model_input = latents.to(dtype)
                if condition is not None:
                    model_input = torch.cat([model_input, condition], dim=1)
                kwargs = dict(hidden_states=model_input, timestep=t.expand(batch_size),
                              encoder_hidden_states_image=image_embeds, shot_ids=shot_ids,
                              encoder_shot_ids=encoder_shot_ids,
                              attention_kwargs=attention_kwargs, return_dict=False)
                if model.camera_encoder is not None:
                    kwargs["camera_features"] = camera_features
                noise_pred = model(encoder_hidden_states=prompt_embeds, **kwargs)[0]
                if do_cfg:
                    noise_uncond = model(encoder_hidden_states=negative_prompt_embeds,
                                         **kwargs)[0]
                    noise_pred = noise_uncond + scale * (noise_pred - noise_uncond)
                latents = self.scheduler.step(noise_pred.float(), t, latents,
                                              return_dict=False)[0]

                if callback_on_step_end is not None:
                    callback_kwargs = {"latents": latents, "prompt_embeds": prompt_embeds,
                                       "negative_prompt_embeds": negative_prompt_embeds}
                    callback_kwargs = {k: callback_kwargs[k]
                                       for k in callback_on_step_end_tensor_inputs}
                    outputs = callback_on_step_end(self, i, t, callback_kwargs) or {}
                    latents = outputs.pop("latents", latents)
                    prompt_embeds = outputs.pop("prompt_embeds", prompt_embeds)
                    negative_prompt_embeds = outputs.pop("negative_prompt_embeds",
                                                         negative_prompt_embeds)
                progress_bar.update()

        # 7. Decode every shot on its own
        if self.interrupt:
            frames, ranges = None, layout.shot_ranges
        elif output_type == "latent":
            frames, ranges = latents, layout.latent_ranges
        else:
            frames, ranges = self.decode_shots(latents, layout, output_type), layout.shot_ranges
        self.maybe_free_model_hooks()
        if not return_dict:
            return frames, ranges
        return CameraDiTPipelineOutput(frames=frames, shot_ranges=ranges)
