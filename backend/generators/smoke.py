"""The ``smoke-test`` generator: a smoke test of the job path, NOT a real model.

It builds a real diffusers :class:`~diffusers.WanPipeline` (``WanTransformer3DModel``,
``AutoencoderKLWan``, a ``UMT5EncoderModel``, a tokenizer and the flow-matching Euler scheduler)
from tiny configurations in code, with **random weights** drawn from a fixed seed. Nothing is
downloaded. It runs the pipeline's real denoising loop, so queueing, progress per denoising step,
cancellation between steps, decoding and MP4 writing are exercised end to end, in well under a
second per job on a CPU. Its videos are coloured noise: the weights were never trained, the camera
path is not used as conditioning and a first-frame image is accepted but ignored (text-to-video
pipeline). The same request and seed give the same video.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from backend.generators.base import (
    CancelledCallback,
    GeneratedVideo,
    GenerationCancelled,
    GenerationRequest,
    GenerationRequestError,
    Generator,
    ProgressCallback,
    check_wan_num_frames,
)

MESSAGE = ("smoke test of the job path: a real diffusers WanPipeline with tiny random weights, "
           "not a real model; its videos are noise")

# The tokenizer's whole vocabulary; every other word becomes <unk>. Enough for prompts to differ.
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
WORDS = ("a", "an", "the", "and", "of", "in", "on", "at", "to", "camera", "shot", "wide", "close",
         "up", "medium", "dolly", "pan", "tilt", "orbit", "zoom", "track", "crane", "left", "right",
         "forward", "back", "slow", "fast", "robot", "person", "car", "walks", "runs", "across",
         "plaza", "street", "room", "sky", "light", "night", "day")

# Wan's VAE halves the image three times (8x) and its transformer patches 2x2 latents.
SIZE_MULTIPLE = 16


@dataclass
class SmokeTestConfig:
    """Smoke-test defaults, all small: a job takes a fraction of a second on a CPU."""

    width: int = 64
    """Output width when the request gives none."""
    num_frames: int = 9
    """Frames per shot when the request gives none (Wan needs 4k+1)."""
    num_inference_steps: int = 2
    """Denoising steps when the request gives none."""
    fps: float = 16.0
    """Playback rate of the MP4 (Wan 2.1's native 16 fps)."""
    weight_seed: int = 0
    """Seed of the random weights: the same seed builds the same pipeline."""
    max_sequence_length: int = 32
    """Prompt tokens fed to the text encoder."""
    max_pixels: int = 512 * 512
    """Largest width x height accepted, so a typo cannot start an hour-long CPU job."""


def build_tokenizer(max_length: int = 32) -> PreTrainedTokenizerFast:
    """A word-level tokenizer built in memory (no files): lower-cases, splits on whitespace and
    punctuation, appends ``</s>`` like T5's tokenizer."""
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *WORDS))}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>",
                                   eos_token="</s>", unk_token="<unk>",
                                   model_max_length=max_length)


def build_pipeline(weight_seed: int = 0, max_sequence_length: int = 32) -> WanPipeline:
    """A WanPipeline with tiny random weights, the same for the same ``weight_seed``."""
    tokenizer = build_tokenizer(max_sequence_length)
    text_dim = 32
    # Built modules start in training mode (dropout on): eval() makes a seed reproduce.
    # fork_rng: the global generator is left as it was, so seeding here disturbs nobody else.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(weight_seed)
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=len(tokenizer), d_model=text_dim, d_kv=8, d_ff=64, num_layers=1,
            num_heads=2, relative_attention_num_buckets=8, relative_attention_max_distance=16,
            dropout_rate=0.0, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0)).eval()
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
            out_channels=16, text_dim=text_dim, freq_dim=32, ffn_dim=32, num_layers=2,
            cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32).eval()
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True]).eval()
    pipeline = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                           transformer=transformer)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@torch.no_grad()
def decode_latents(pipeline: WanPipeline, latents: torch.Tensor) -> np.ndarray:
    """(batch, z_dim, latent frames, h, w) latents -> (batch, F, H, W, 3) floats in 0..1, as
    ``WanPipeline.__call__`` decodes them for ``output_type="np"``."""
    vae = pipeline.vae
    shape = (1, vae.config.z_dim, 1, 1, 1)
    latents = latents.to(vae.device, vae.dtype)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents)
    std = torch.tensor(vae.config.latents_std).view(shape).to(latents)
    video = vae.decode(latents * std + mean, return_dict=False)[0]
    return pipeline.video_processor.postprocess_video(video, output_type="np")


def _round_size(value: float) -> int:
    return max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)


class SmokeTestGenerator(Generator):
    """Smoke test of the job path with random weights, not a real model (see the module)."""

    name = "smoke-test"
    kind = "smoke-test"

    def __init__(self, config: SmokeTestConfig | None = None) -> None:
        self.config = config or SmokeTestConfig()
        self._pipelines: dict[str, WanPipeline] = {}
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        return True, MESSAGE

    def load(self, device: str = "cpu") -> None:
        self._pipeline(device)

    def _pipeline(self, device: str) -> WanPipeline:
        """The pipeline on ``device``, built on first use."""
        with self._lock:
            if device not in self._pipelines:
                pipeline = build_pipeline(self.config.weight_seed, self.config.max_sequence_length)
                self._pipelines[device] = pipeline.to(device)
            return self._pipelines[device]

    def unload(self) -> bool:
        with self._lock:
            loaded = bool(self._pipelines)
            self._pipelines.clear()
        return loaded

    def output_size(self, request: GenerationRequest) -> tuple[int, int]:
        """``(width, height)``: as requested, else the sequence's aspect at the default width."""
        width, height = request.options.width, request.options.height
        aspect = request.sequence.resolution[1] / request.sequence.resolution[0]
        if width is None and height is None:
            width = self.config.width
        if height is None:
            height = _round_size(width * aspect)
        if width is None:
            width = _round_size(height / aspect)
        return width, height

    def check_request(self, request: GenerationRequest) -> None:
        width, height = self.output_size(request)
        for key, value in (("width", width), ("height", height)):
            if value % SIZE_MULTIPLE:
                raise GenerationRequestError(
                    f"options.{key}", f"{value} is not a multiple of {SIZE_MULTIPLE} (Wan's VAE "
                                      "and patch size)")
        if width * height > self.config.max_pixels:
            raise GenerationRequestError(
                "options.width", f"{width}x{height} is larger than the smoke test's limit of "
                                 f"{self.config.max_pixels} pixels")
        check_wan_num_frames(request.options.num_frames)

    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        """One clip per requested shot, concatenated; progress after every denoising step."""
        self.check_request(request)
        # A local reference: an unload() meanwhile frees the weights once this job is done.
        pipeline = self._pipeline(request.device)
        width, height = self.output_size(request)
        num_frames = request.options.num_frames or self.config.num_frames
        steps = request.options.num_inference_steps or self.config.num_inference_steps
        noise = torch.Generator(request.device).manual_seed(request.options.seed)
        total = len(request.shots) * steps
        clips: list[np.ndarray] = []
        ranges: list[tuple[str, int, int]] = []
        for k, shot_name in enumerate(request.shots):
            shot = request.sequence.shot(shot_name)

            def on_step_end(pipe: WanPipeline, step: int, timestep: torch.Tensor,
                            callback_kwargs: dict, k: int = k, shot_name: str = shot_name) -> dict:
                progress((k * steps + step + 1) / total,
                         f"{shot_name}: denoising step {step + 1}/{steps}")
                if cancelled():
                    pipe._interrupt = True  # the loop skips the remaining steps
                return callback_kwargs

            if cancelled():
                raise GenerationCancelled
            prompt = " ".join(p for p in (request.sequence.prompt, shot.prompt) if p) or "a shot"
            # Latents out, decoded below: an interrupted loop then costs no VAE decode.
            latents = pipeline(
                prompt=prompt, height=height, width=width, num_frames=num_frames,
                num_inference_steps=steps, guidance_scale=1.0, generator=noise,
                max_sequence_length=self.config.max_sequence_length,
                callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=[],
                output_type="latent",
            ).frames
            if cancelled():
                raise GenerationCancelled
            frames = decode_latents(pipeline, latents)[0]
            # (F, H, W, 3) floats in 0..1 -> uint8
            clips.append((np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
            start = sum(len(clip) for clip in clips[:-1])
            ranges.append((shot_name, start, start + len(clips[-1]) - 1))
        return GeneratedVideo(frames=np.concatenate(clips), fps=self.config.fps,
                              shot_ranges=ranges)
