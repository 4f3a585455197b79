"""Image Conductor inference: AnimateDiff + first-frame SparseCtrl RGB + the motion ControlNet.

:class:`TrajectoryControlNetPipeline` denoises AnimateDiff latents (SD1.5 UNet with an
AnimateDiff motion adapter, :class:`~diffusers.UNetMotionModel`) with the residuals of two
ControlNets summed into the UNet: the image ControlNet (SparseCtrl RGB, the first frame's VAE
latents + a mask) and the motion ControlNet
(:class:`~backend.models.trajectory_controlnet.TrajectoryControlNetModel`, flow maps
``(F, 2, H, W)``). The motion ControlNet's camera and object LoRAs are chosen and weighted per
call (``adapter_names``, ``adapter_weights``), and :func:`camera_free_guidance` (Image Conductor
Eq. 5) runs on top of classifier-free guidance when ``trajectory_guidance_scale`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    SparseControlNetModel,
    UNetMotionModel,
)
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from backend.models.trajectory_controlnet import (
    LORA_FILES,
    OBJECT_ADAPTER,
    TrajectoryControlNetModel,
    activate_adapters,
    adapters_disabled,
    image_controlnet_from_unet,
    load_motion_lora,
)


@dataclass
class TrajectoryControlNetPipelineOutput(BaseOutput):
    """Output of :class:`TrajectoryControlNetPipeline`."""

    frames: torch.Tensor | np.ndarray
    """``np``: float (B, F, H, W, 3) in 0..1; ``pt``: (B, F, 3, H, W); ``latent``:
    (B, 4, F, h, w)."""


def camera_free_guidance(noise_uncond: torch.Tensor, noise_cond: torch.Tensor,
                         noise_trajs: torch.Tensor, guidance_scale: float,
                         trajectory_guidance_scale: float) -> torch.Tensor:
    """Camera-free guidance, Image Conductor Eq. 5::

        eps_hat(x_t, c) = eps_theta0(x_t, null)
                        + lambda_cfg   * (eps_theta0(x_t, c)     - eps_theta0(x_t, null))
                        + lambda_trajs * (eps_theta_trajs(x_t, c) - eps_theta0(x_t, c))

    ``noise_uncond`` = eps_theta0(x_t, null) and ``noise_cond`` = eps_theta0(x_t, c) come from the
    base motion ControlNet theta_0 (no LoRA), without and with the text prompt (the flow maps and
    the first frame condition both, as in diffusers' ControlNet CFG); ``noise_trajs`` =
    eps_theta_trajs(x_t, c) from the motion ControlNet with the object LoRA. ``guidance_scale``
    is lambda_cfg, ``trajectory_guidance_scale`` lambda_trajs. lambda_trajs = 0 is plain CFG with
    theta_0; lambda_cfg = lambda_trajs = 1 is the object-LoRA branch alone.
    """
    return (noise_uncond + guidance_scale * (noise_cond - noise_uncond)
            + trajectory_guidance_scale * (noise_trajs - noise_cond))


@dataclass
class _Branch:
    """One row group of the denoiser's batch: text condition and motion ControlNet adapters."""

    conditional: bool
    """Text prompt (True) or negative prompt (False)."""
    adapters: list[str]
    """Active LoRAs of the motion ControlNet; empty: the base ControlNet theta_0."""
    weights: list[float]
    """Scale of each adapter."""


class TrajectoryControlNetPipeline(DiffusionPipeline):
    """Image-to-video with trajectory control (Image Conductor); see the module docstring."""

    model_cpu_offload_seq = "text_encoder->image_controlnet->controlnet->unet->vae"
    _optional_components: ClassVar[list[str]] = ["image_controlnet"]

    def __init__(self, vae: AutoencoderKL, text_encoder: Any, tokenizer: Any,
                 unet: UNetMotionModel, controlnet: TrajectoryControlNetModel,
                 scheduler: DDIMScheduler, image_controlnet: SparseControlNetModel | None = None,
                 ) -> None:
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                              controlnet=controlnet, scheduler=scheduler,
                              image_controlnet=image_controlnet)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self._interrupt = False

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_folders(cls, base: str | Path, motion_adapter: str | Path, controlnet: str | Path,
                     image_controlnet: str | Path | None = None,
                     torch_dtype: torch.dtype | None = None) -> TrajectoryControlNetPipeline:
        """Load from local diffusers-layout folders, never the network: ``base`` SD1.5
        (``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``), ``motion_adapter``
        an AnimateDiff :class:`~diffusers.MotionAdapter` (v3), ``controlnet`` the motion
        ControlNet (SparseControlNetModel layout) with optional ``camera_lora.safetensors`` /
        ``object_lora.safetensors``, ``image_controlnet`` SparseCtrl RGB."""
        from diffusers import MotionAdapter, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        kwargs: dict[str, Any] = {"local_files_only": True}
        if torch_dtype is not None:
            kwargs["torch_dtype"] = torch_dtype
        base = Path(base)
        unet = UNetMotionModel.from_unet2d(
            UNet2DConditionModel.from_pretrained(base, subfolder="unet", **kwargs),
            MotionAdapter.from_pretrained(motion_adapter, **kwargs))
        if torch_dtype is not None:
            unet = unet.to(torch_dtype)
        motion = TrajectoryControlNetModel.from_pretrained(controlnet, **kwargs)
        for name, filename in LORA_FILES.items():
            if (Path(controlnet) / filename).is_file():
                load_motion_lora(motion, name, Path(controlnet) / filename)
        image = (SparseControlNetModel.from_pretrained(image_controlnet, **kwargs)
                 if image_controlnet is not None else None)
        # AnimateDiff's sampler: DDIM over SD1.5's linear betas (Image Conductor: 25 steps).
        scheduler = DDIMScheduler.from_pretrained(
            base, subfolder="scheduler", beta_schedule="linear", clip_sample=False,
            timestep_spacing="linspace", steps_offset=1, local_files_only=True)
        pipeline = cls(vae=AutoencoderKL.from_pretrained(base, subfolder="vae", **kwargs),
                       text_encoder=CLIPTextModel.from_pretrained(base, subfolder="text_encoder",
                                                                  **kwargs),
                       tokenizer=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer",
                                                               local_files_only=True),
                       unet=unet, controlnet=motion, scheduler=scheduler,
                       image_controlnet=image)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    # -- steps -----------------------------------------------------------------------------

    def check_inputs(self, prompt: str | list[str], flow_maps: torch.Tensor, height: int,
                     width: int, num_frames: int, guidance_scale: float,
                     trajectory_guidance_scale: float | None, adapter_names: list[str],
                     adapter_weights: list[float]) -> None:
        """Raise ValueError naming the first bad argument."""
        if not isinstance(prompt, str) and not (isinstance(prompt, list) and prompt
                                                and all(isinstance(p, str) for p in prompt)):
            raise ValueError(f"`prompt` must be a string or a list of strings, got {prompt!r}")
        if flow_maps.ndim not in (4, 5) or flow_maps.shape[-3] != 2:
            raise ValueError("`flow_maps` must be (F, 2, H, W) or (B, F, 2, H, W), got "
                             f"{tuple(flow_maps.shape)}")
        if tuple(flow_maps.shape[-2:]) != (height, width) or flow_maps.shape[-4] != num_frames:
            raise ValueError(f"`flow_maps` {tuple(flow_maps.shape)} do not match num_frames="
                             f"{num_frames}, height={height}, width={width}")
        multiple = self.vae_scale_factor
        if height % multiple or width % multiple:
            raise ValueError(f"`height` and `width` must be multiples of {multiple}, got "
                             f"{height}x{width}")
        if num_frames > self.unet.config.motion_max_seq_length:
            raise ValueError(f"`num_frames` {num_frames} exceeds the motion modules' "
                             f"{self.unet.config.motion_max_seq_length}")
        if guidance_scale < 1.0:
            raise ValueError(f"`guidance_scale` must be >= 1, got {guidance_scale}")
        known = set(getattr(self.controlnet, "peft_config", {}) or {})
        unknown = [name for name in adapter_names if name not in known]
        if unknown:
            raise ValueError(f"`adapter_names`: {unknown} not loaded; loaded: {sorted(known)}")
        if len(adapter_weights) != len(adapter_names):
            raise ValueError("`adapter_weights` must give one weight per adapter name")
        if trajectory_guidance_scale is not None and not adapter_names:
            raise ValueError("`trajectory_guidance_scale` needs the object LoRA: load "
                             f"'{OBJECT_ADAPTER}' or name one in `adapter_names`")

    def encode_prompt(self, prompt: list[str], device: torch.device) -> torch.Tensor:
        """(B, L, D) text-encoder hidden states of ``prompt``."""
        tokens = self.tokenizer(prompt, padding="max_length", truncation=True,
                                max_length=self.tokenizer.model_max_length, return_tensors="pt")
        return self.text_encoder(tokens.input_ids.to(device))[0]

    def prepare_image_condition(self, image: Any, batch_size: int, num_frames: int, height: int,
                                width: int, device: torch.device, dtype: torch.dtype
                                ) -> tuple[torch.Tensor, torch.Tensor]:
        """SparseCtrl's condition of the first frame: ``(cond (B, C, F, h, w), mask (B, 1, F,
        h, w))``, zero on every frame but frame 0. ``image``: uint8 (H, W, 3), float (3, H, W)
        in 0..1 or a PIL image."""
        pixels = torch.as_tensor(np.asarray(image)) if not torch.is_tensor(image) else image
        if pixels.dtype == torch.uint8:
            pixels = pixels.float() / 255.0
        if pixels.ndim == 3 and pixels.shape[-1] == 3:
            pixels = pixels.permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        pixels = F.interpolate(pixels[None].to(device, torch.float32), size=(height, width),
                               mode="bilinear", align_corners=False)
        if self.image_controlnet.use_simplified_condition_embedding:
            vae_input = (2.0 * pixels - 1.0).to(self.vae.dtype)
            frame = self.vae.encode(vae_input).latent_dist.mode() * self.vae.config.scaling_factor
        else:
            frame = pixels
        channels, h, w = frame.shape[1:]
        cond = torch.zeros(batch_size, channels, num_frames, h, w, device=device, dtype=dtype)
        mask = torch.zeros(batch_size, 1, num_frames, h, w, device=device, dtype=dtype)
        cond[:, :, 0] = frame.to(dtype)
        mask[:, :, 0] = 1.0
        return cond, mask

    def prepare_latents(self, batch_size: int, num_frames: int, height: int, width: int,
                        dtype: torch.dtype, device: torch.device,
                        generator: torch.Generator | None, latents: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """Initial noise (B, 4, F, h, w) from ``generator``, scaled for the scheduler."""
        shape = (batch_size, self.unet.config.in_channels, num_frames,
                 height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"`latents` must be {shape}, got {tuple(latents.shape)}")
        return latents.to(device, dtype) * self.scheduler.init_noise_sigma

    def motion_residuals(self, latents: torch.Tensor, timestep: torch.Tensor,
                         embeds: torch.Tensor, flow_maps: torch.Tensor, branches: list[_Branch],
                         rows: int, scale: float) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Motion ControlNet residuals for the stacked branches (``rows`` batch rows each),
        one ControlNet pass per distinct adapter setting; residuals are (rows * F, C, h, w)
        batch-major, so the groups concatenate along dim 0."""
        groups: list[tuple[tuple[str, ...], tuple[float, ...], list[int]]] = []
        for index, branch in enumerate(branches):
            key = (tuple(branch.adapters), tuple(branch.weights))
            if groups and groups[-1][:2] == key:
                groups[-1][2].append(index)
            else:
                groups.append((*key, [index]))
        downs: list[list[torch.Tensor]] = []
        mids: list[torch.Tensor] = []
        for adapters, weights, indices in groups:
            part = slice(indices[0] * rows, (indices[-1] + 1) * rows)
            frames = flow_maps.shape[2]  # embeds are repeated per frame
            part_embeds = embeds[part.start * frames:part.stop * frames]
            run = dict(encoder_hidden_states=part_embeds, controlnet_cond=flow_maps[part],
                       conditioning_scale=scale, return_dict=False)
            if adapters:
                activate_adapters(self.controlnet, list(adapters), list(weights))
                down, mid = self.controlnet(latents[part], timestep, **run)
            else:
                with adapters_disabled(self.controlnet):
                    down, mid = self.controlnet(latents[part], timestep, **run)
            downs.append(down)
            mids.append(mid)
        return [torch.cat(parts) for parts in zip(*downs, strict=True)], torch.cat(mids)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 4, F, h, w) latents -> (B, F, 3, H, W) pixels in 0..1."""
        batch, channels, frames, h, w = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, h, w)
        images = self.vae.decode(flat.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        images = (images.float() / 2 + 0.5).clamp(0, 1)
        return images.reshape(batch, frames, *images.shape[1:])

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # -- call ------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        flow_maps: torch.Tensor,
        image: Any = None,
        negative_prompt: str | list[str] = "",
        num_inference_steps: int = 25,
        guidance_scale: float = 8.5,
        adapter_names: str | list[str] | None = None,
        adapter_weights: float | list[float] | None = None,
        trajectory_guidance_scale: float | None = None,
        controlnet_conditioning_scale: float = 1.0,
        image_conditioning_scale: float = 1.0,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Any = None,
    ) -> TrajectoryControlNetPipelineOutput | tuple:
        """Generate a clip that follows ``flow_maps`` (F, 2, H, W) from first frame ``image``.

        ``adapter_names`` / ``adapter_weights``: the motion ControlNet's LoRAs for this call
        (``"camera"``, ``"object"`` or both; None: the base ControlNet). With
        ``trajectory_guidance_scale`` (lambda_trajs) set, camera-free guidance (Eq. 5,
        :func:`camera_free_guidance`) runs three branches: unconditional and conditional with
        the base ControlNet, conditional with ``adapter_names`` (default the object LoRA);
        ``guidance_scale`` is lambda_cfg. ``callback_on_step_end(pipe, step, t, {})`` runs after
        every step; setting ``pipe._interrupt`` stops the loop.
        """
        # 1. Check inputs
        if isinstance(adapter_names, str):
            adapter_names = [adapter_names]
        if adapter_names is None:
            adapter_names = [OBJECT_ADAPTER] if trajectory_guidance_scale is not None else []
        if adapter_weights is None:
            adapter_weights = [1.0] * len(adapter_names)
        elif not isinstance(adapter_weights, list | tuple):
            adapter_weights = [float(adapter_weights)] * len(adapter_names)
        adapter_weights = list(adapter_weights)
        num_frames, height, width = flow_maps.shape[-4], flow_maps.shape[-2], flow_maps.shape[-1]
        self.check_inputs(prompt, flow_maps, height, width, num_frames, guidance_scale,
                          trajectory_guidance_scale, adapter_names, adapter_weights)
        if image is not None and self.image_controlnet is None:
            raise ValueError("`image` given but the pipeline has no image_controlnet")
        self._interrupt = False

        # 2. Define call parameters: the branches stacked in the denoiser's batch
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        batch_size = len(prompts)
        negatives = ([negative_prompt] * batch_size if isinstance(negative_prompt, str)
                     else list(negative_prompt))
        device = self._execution_device
        dtype = self.unet.dtype
        if trajectory_guidance_scale is not None:
            branches = [_Branch(False, [], []), _Branch(True, [], []),
                        _Branch(True, adapter_names, adapter_weights)]
        elif guidance_scale > 1.0:
            branches = [_Branch(False, adapter_names, adapter_weights),
                        _Branch(True, adapter_names, adapter_weights)]
        else:
            branches = [_Branch(True, adapter_names, adapter_weights)]
        copies = len(branches)

        # 3. Encode input prompt: (copies * B, L, D), repeated per frame for the 2D blocks
        embeds = torch.cat([self.encode_prompt(prompts if branch.conditional else negatives,
                                               device) for branch in branches]).to(dtype)
        embeds = embeds.repeat_interleave(num_frames, dim=0)

        # 4. Prepare the conditions: flow maps (copies * B, 2, F, H, W), first frame
        flows = flow_maps.to(device, self.controlnet.dtype)
        flows = flows[None] if flows.ndim == 4 else flows
        flows = flows.expand(batch_size, -1, -1, -1, -1).permute(0, 2, 1, 3, 4)
        flows = flows.repeat(copies, 1, 1, 1, 1)
        if image is not None:
            image_cond, image_mask = self.prepare_image_condition(
                image, batch_size * copies, num_frames, height, width, device,
                self.image_controlnet.dtype)

        # 5. Prepare timesteps and latents
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        latents = self.prepare_latents(batch_size, num_frames, height, width, dtype, device,
                                       generator, latents)

        # 6. Denoising loop
        for i, t in enumerate(timesteps):
            if self.interrupt:
                break
            model_input = self.scheduler.scale_model_input(latents.repeat(copies, 1, 1, 1, 1), t)
            down, mid = self.motion_residuals(model_input, t, embeds, flows, branches,
                                              batch_size, controlnet_conditioning_scale)
            if image is not None:
                image_down, image_mid = self.image_controlnet(
                    model_input, t, encoder_hidden_states=embeds, controlnet_cond=image_cond,
                    conditioning_mask=image_mask, conditioning_scale=image_conditioning_scale,
                    return_dict=False)
                # Both ControlNets' residuals are summed into the UNet.
                down = [a + b for a, b in zip(down, image_down, strict=True)]
                mid = mid + image_mid
            noise = self.unet(model_input, t, encoder_hidden_states=embeds,
                              down_block_additional_residuals=down,
                              mid_block_additional_residual=mid).sample
            if copies == 3:
                noise = camera_free_guidance(*noise.chunk(3), guidance_scale,
                                             trajectory_guidance_scale)
            elif copies == 2:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(noise, t, latents).prev_sample
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, t, {})

        # 7. Decode
        if output_type == "latent":
            video = latents
        else:
            video = self.decode_latents(latents)
            if output_type == "np":
                video = video.permute(0, 1, 3, 4, 2).cpu().numpy()
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return TrajectoryControlNetPipelineOutput(frames=video)


def build_tiny_pipeline(seed: int = 0, with_adapters: bool = True, lora_rank: int = 4
                        ) -> TrajectoryControlNetPipeline:
    """The pipeline with tiny random weights built in code (tests, benchmarks, smoke training):
    a 2-block UNetMotionModel, a 2x VAE, a 2-layer CLIP text encoder, both ControlNets and, with
    ``with_adapters``, camera and object LoRAs with random (non-zero) ``B`` so they act."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from backend.generators.smoke import build_tokenizer
    from backend.models.trajectory_controlnet import CAMERA_ADAPTER, add_motion_lora

    tokenizer = build_tokenizer(16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=32, pad_token_id=0, eos_token_id=1,
            bos_token_id=1)).eval()
        unet = UNetMotionModel(
            block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
            down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
            up_block_types=("UpBlockMotion", "CrossAttnUpBlockMotion"), cross_attention_dim=32,
            num_attention_heads=2, motion_num_attention_heads=2, motion_max_seq_length=32).eval()
        vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=8, latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2).eval()
        controlnet = TrajectoryControlNetModel.from_unet(
            unet, conditioning_embedding_out_channels=(8, 16)).eval()
        image_controlnet = image_controlnet_from_unet(unet).eval()
        # Random output projections, so that both ControlNets change the prediction in tests.
        for net in (controlnet, image_controlnet):
            for name, parameter in net.named_parameters():
                if "controlnet_" in name:
                    torch.nn.init.normal_(parameter, std=0.02)
        if with_adapters:
            for name in (CAMERA_ADAPTER, OBJECT_ADAPTER):
                add_motion_lora(controlnet, name, rank=lora_rank)
                for module_name, parameter in controlnet.named_parameters():
                    if f"lora_B.{name}." in module_name:
                        torch.nn.init.normal_(parameter, std=0.1)
    scheduler = DDIMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, timestep_spacing="linspace", steps_offset=1)
    pipeline = TrajectoryControlNetPipeline(vae=vae, text_encoder=text_encoder,
                                            tokenizer=tokenizer, unet=unet,
                                            controlnet=controlnet, scheduler=scheduler,
                                            image_controlnet=image_controlnet)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
