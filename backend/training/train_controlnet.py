"""Train Image Conductor's motion ControlNet and its camera / object LoRAs, in the paper's order.

``python -m backend.training.train_controlnet --stage STAGE --data DIR --out DIR ...``
(``accelerate launch -m backend.training.train_controlnet ...`` for several GPUs):

1. ``motion``: the whole motion ControlNet on mixed data (camera transitions + object motion),
   started from the UNet's encoder (:meth:`TrajectoryControlNetModel.from_unet`) or from
   ``--controlnet``. Writes the ControlNet folder (``config.json`` + safetensors) to ``OUT``.
2. ``camera``: the camera LoRA on camera-only data (Eq. 1), the ControlNet of stage 1 frozen.
   Writes ``OUT/camera_lora.safetensors``.
3. ``object``: the object LoRA on mixed data with the camera LoRA of stage 2 loaded, active and
   stop-gradiented (Eq. 2: ``theta_0 + sg[dtheta_cam] + dtheta_obj``), on the denoising loss
   (Eq. 3) plus ``ortho_weight`` times the orthogonal loss between the two LoRAs (Eq. 4,
   :func:`backend.training.losses.orthogonal_loss`). Writes ``OUT/object_lora.safetensors``.

Copy the LoRA files into the ControlNet folder for the pipeline to load them. The AnimateDiff
UNet, the VAE, the text encoder and the image ControlNet (SparseCtrl RGB) stay frozen.

Data: a folder of ``*.npz`` clips, each with ``frames`` uint8 (F, H, W, 3), ``flows`` float32
(F, 2, H, W) (stacked trajectory flow maps, :mod:`backend.conditioning.trajectories`) and
``prompt`` (a string). Checkpoints (``OUT/checkpoints/step_NNNNNNN``) hold the trained weights as
safetensors and ``trainer_state.json``; every step is logged to ``OUT/train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from backend.models.trajectory_controlnet import (
    CAMERA_ADAPTER,
    LORA_FILES,
    OBJECT_ADAPTER,
    TrajectoryControlNetModel,
    activate_adapters,
    add_motion_lora,
    load_motion_lora,
    lora_down_weights,
    save_motion_lora,
)
from backend.pipelines.trajectory_controlnet import TrajectoryControlNetPipeline
from backend.training.losses import orthogonal_loss

STAGES = ("motion", "camera", "object")
TRAINER_STATE = "trainer_state.json"


@dataclass
class TrainControlNetConfig:
    """Settings of one training stage."""

    stage: str
    """``motion``, ``camera`` or ``object`` (see the module docstring)."""
    data: Path
    """Folder of ``*.npz`` clips: mixed data for motion/object, camera-only for camera."""
    out: Path
    """Output folder: the trained weights, ``checkpoints/``, ``train_log.jsonl``."""
    base: Path | None = None
    """SD1.5 folder in diffusers layout; None with ``tiny``."""
    motion_adapter: Path | None = None
    """AnimateDiff motion adapter folder (v3)."""
    controlnet: Path | None = None
    """Motion ControlNet to start from (stage 1: optional; stages 2-3: stage 1's output)."""
    image_controlnet: Path | None = None
    """SparseCtrl RGB folder; None trains without the first-frame ControlNet."""
    camera_lora: Path | None = None
    """Stage 3: the camera LoRA file written by stage 2."""
    tiny: bool = False
    """Tiny random models built in code (tests, smoke runs)."""
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 1
    """Clips per step and device."""
    lr: float = 1e-4
    """AdamW learning rate (the paper: 1e-4)."""
    lora_rank: int = 64
    """Rank of the LoRA trained in stages 2-3."""
    ortho_weight: float = 1.0
    """Weight of the orthogonal loss in stage 3."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    seed: int = 0
    """Seed of data order, noise and timesteps."""
    save_every: int = 500
    """Checkpoint every this many steps."""
    log_every: int = 50
    """Print every this many steps."""
    mixed_precision: str = "no"
    """accelerate's mixed precision: no, fp16, bf16."""


class ClipDataset(torch.utils.data.Dataset):
    """``*.npz`` clips: pixels (F, 3, H, W) in -1..1, flow maps (F, 2, H, W), prompt."""

    def __init__(self, folder: str | Path) -> None:
        self.paths = sorted(Path(folder).glob("*.npz"))
        if not self.paths:
            raise ValueError(f"--data: no *.npz clips in {folder}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with np.load(self.paths[index]) as clip:
            frames = torch.from_numpy(clip["frames"]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            flows = torch.from_numpy(clip["flows"].astype(np.float32))
            prompt = str(clip["prompt"])
        if flows.shape[0] != frames.shape[0] or flows.shape[-2:] != frames.shape[-2:]:
            raise ValueError(f"{self.paths[index]}: flows {tuple(flows.shape)} do not match "
                             f"frames {tuple(frames.shape)}")
        return {"pixels": frames, "flows": flows, "prompt": prompt}


def build_components(config: TrainControlNetConfig) -> TrajectoryControlNetPipeline:
    """The frozen AnimateDiff parts and the motion ControlNet, as one pipeline object."""
    from backend.pipelines.trajectory_controlnet import build_tiny_pipeline

    if config.tiny:
        pipeline = build_tiny_pipeline(seed=config.seed, with_adapters=False)
    elif config.base is None or config.motion_adapter is None:
        raise ValueError("--base and --motion-adapter: give the SD1.5 and AnimateDiff folders "
                         "(or --tiny)")
    elif config.controlnet is not None:
        pipeline = TrajectoryControlNetPipeline.from_folders(
            config.base, config.motion_adapter, config.controlnet, config.image_controlnet)
    else:
        pipeline = _pipeline_with_new_controlnet(config)
    if config.tiny and config.controlnet is not None:
        pipeline.controlnet = TrajectoryControlNetModel.from_pretrained(config.controlnet)
    for name in list(getattr(pipeline.controlnet, "peft_config", {}) or {}):
        pipeline.controlnet.delete_adapters(name)  # LoRAs come from this stage's settings
    return pipeline


def _pipeline_with_new_controlnet(config: TrainControlNetConfig) -> TrajectoryControlNetPipeline:
    """Stage 1 without ``--controlnet``: a fresh motion ControlNet from the UNet's encoder."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        MotionAdapter,
        SparseControlNetModel,
        UNet2DConditionModel,
        UNetMotionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    base = Path(config.base)
    unet = UNetMotionModel.from_unet2d(
        UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True),
        MotionAdapter.from_pretrained(config.motion_adapter, local_files_only=True))
    image = (SparseControlNetModel.from_pretrained(config.image_controlnet, local_files_only=True)
             if config.image_controlnet else None)
    return TrajectoryControlNetPipeline(
        vae=AutoencoderKL.from_pretrained(base, subfolder="vae", local_files_only=True),
        text_encoder=CLIPTextModel.from_pretrained(base, subfolder="text_encoder",
                                                   local_files_only=True),
        tokenizer=CLIPTokenizer.from_pretrained(base, subfolder="tokenizer",
                                                local_files_only=True),
        unet=unet, controlnet=TrajectoryControlNetModel.from_unet(unet),
        scheduler=DDIMScheduler.from_pretrained(base, subfolder="scheduler",
                                                beta_schedule="linear", clip_sample=False,
                                                local_files_only=True),
        image_controlnet=image)


def prepare_stage(pipeline: TrajectoryControlNetPipeline, config: TrainControlNetConfig
                  ) -> list[torch.nn.Parameter]:
    """Freeze everything, then unfreeze what ``config.stage`` trains; returns those parameters.

    Stage ``object`` loads the camera LoRA frozen (the stop-gradient of Eq. 2) and keeps both
    LoRAs active at weight 1.
    """
    if config.stage not in STAGES:
        raise ValueError(f"--stage: {config.stage!r} is not one of {STAGES}")
    for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.controlnet,
                   pipeline.image_controlnet):
        if module is not None:
            module.requires_grad_(False)
    controlnet = pipeline.controlnet
    if config.stage == "motion":
        controlnet.requires_grad_(True)
        return list(controlnet.parameters())
    if config.stage == "object":
        if config.camera_lora is None:
            raise ValueError("--camera-lora: stage object trains over the camera LoRA of stage "
                             "camera; give its camera_lora.safetensors")
        load_motion_lora(controlnet, CAMERA_ADAPTER, config.camera_lora)
    name = CAMERA_ADAPTER if config.stage == "camera" else OBJECT_ADAPTER
    add_motion_lora(controlnet, name, rank=config.lora_rank)
    controlnet.requires_grad_(False)
    trained = [p for key, p in controlnet.named_parameters() if f".{name}." in key
               and "lora_" in key]
    for parameter in trained:
        parameter.requires_grad_(True)
    active = [CAMERA_ADAPTER, OBJECT_ADAPTER] if config.stage == "object" else [CAMERA_ADAPTER]
    activate_adapters(controlnet, active, [1.0] * len(active))
    return trained


def denoising_loss(pipeline: TrajectoryControlNetPipeline, controlnet: torch.nn.Module,
                   batch: dict[str, Any], generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """The standard diffusion objective (Eqs. 1 and 3): ``||target - eps_theta(z_t, t, c_txt,
    c_img, c_trajs)||^2`` with noise and timestep drawn from ``generator``; the target is the
    noise (or the velocity for a v-prediction scheduler)."""
    pixels, flows = batch["pixels"], batch["flows"]  # (B, F, 3, H, W), (B, F, 2, H, W)
    batch_size, num_frames = pixels.shape[:2]
    device = pixels.device
    with torch.no_grad():
        flat = pixels.flatten(0, 1).to(pipeline.vae.dtype)
        latents = pipeline.vae.encode(flat).latent_dist.sample(generator)
        latents = latents * pipeline.vae.config.scaling_factor
        # (B * F, 4, h, w) -> (B, 4, F, h, w)
        latents = latents.unflatten(0, (batch_size, num_frames)).permute(0, 2, 1, 3, 4)
        embeds = pipeline.encode_prompt(list(batch["prompt"]), device)
        embeds = embeds.repeat_interleave(num_frames, dim=0)
    noise = torch.randn(latents.shape, generator=generator, device=device)
    scheduler = pipeline.scheduler
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,),
                              generator=generator, device=device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    down, mid = controlnet(noisy, timesteps, encoder_hidden_states=embeds,
                           controlnet_cond=flows.permute(0, 2, 1, 3, 4), return_dict=False)
    if pipeline.image_controlnet is not None:
        with torch.no_grad():
            cond = torch.zeros_like(latents)
            mask = torch.zeros_like(latents[:, :1])
            cond[:, :, 0], mask[:, :, 0] = latents[:, :, 0], 1.0  # the clean first frame
            image_down, image_mid = pipeline.image_controlnet(
                noisy, timesteps, encoder_hidden_states=embeds, controlnet_cond=cond,
                conditioning_mask=mask, return_dict=False)
        down = [a + b for a, b in zip(down, image_down, strict=True)]
        mid = mid + image_mid
    prediction = pipeline.unet(noisy, timesteps, encoder_hidden_states=embeds,
                               down_block_additional_residuals=down,
                               mid_block_additional_residual=mid).sample
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    return F.mse_loss(prediction.float(), target.float())


def stage_losses(pipeline: TrajectoryControlNetPipeline, controlnet: torch.nn.Module,
                 batch: dict[str, Any], config: TrainControlNetConfig,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``{"loss", "mse", "ortho"}`` of one batch for ``config.stage``."""
    mse = denoising_loss(pipeline, controlnet, batch, generator)
    ortho = torch.zeros((), device=mse.device)
    if config.stage == "object":
        ortho = orthogonal_loss(lora_down_weights(pipeline.controlnet, CAMERA_ADAPTER),
                                lora_down_weights(pipeline.controlnet, OBJECT_ADAPTER))
    return {"loss": mse + config.ortho_weight * ortho, "mse": mse.detach(),
            "ortho": ortho.detach()}


def save_stage(controlnet: TrajectoryControlNetModel, stage: str, folder: Path) -> None:
    """Write what ``stage`` trained into ``folder`` (safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    if stage == "motion":
        controlnet.save_pretrained(folder, safe_serialization=True)
    else:
        name = CAMERA_ADAPTER if stage == "camera" else OBJECT_ADAPTER
        save_motion_lora(controlnet, name, folder / LORA_FILES[name])


def train_controlnet(config: TrainControlNetConfig,
                     pipeline: TrajectoryControlNetPipeline | None = None
                     ) -> list[dict[str, float]]:
    """Run one stage; returns the loss history, one entry per step.

    ``pipeline``: train its motion ControlNet in place instead of building one (tests).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    config.out = Path(config.out)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    pipeline = pipeline or build_components(config)
    parameters = prepare_stage(pipeline, config)
    pipeline.to(accelerator.device)
    for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.image_controlnet):
        if module is not None:
            module.eval()
    dataset = ClipDataset(config.data)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=min(config.batch_size, len(dataset)), shuffle=True,
        generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.AdamW(parameters, lr=config.lr)
    controlnet, optimizer, loader = accelerator.prepare(pipeline.controlnet, optimizer, loader)
    controlnet.train()
    unwrapped = accelerator.unwrap_model(controlnet)
    noise = torch.Generator(accelerator.device).manual_seed(config.seed
                                                            + accelerator.process_index)
    if accelerator.is_main_process:
        config.out.mkdir(parents=True, exist_ok=True)
    log_path = config.out / "train_log.jsonl"
    history: list[dict[str, float]] = []
    step = 0
    while step < config.steps:
        for batch in loader:
            if step >= config.steps:
                break
            with accelerator.autocast():
                losses = stage_losses(pipeline, controlnet, batch, config, noise)
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
                    accelerator.print(f"{config.stage} step {step}/{config.steps}  loss "
                                      f"{record['loss']:.4f} (mse {record['mse']:.4f}, ortho "
                                      f"{record['ortho']:.4f})")
            if step % config.save_every == 0 and accelerator.is_main_process:
                folder = config.out / "checkpoints" / f"step_{step:07d}"
                save_stage(unwrapped, config.stage, folder)
                (folder / TRAINER_STATE).write_text(json.dumps({"step": step,
                                                                "history": history}))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_stage(unwrapped, config.stage, config.out)
    controlnet.eval()
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    for name in ("base", "motion-adapter", "controlnet", "image-controlnet", "camera-lora"):
        parser.add_argument(f"--{name}", type=Path, default=None)
    parser.add_argument("--tiny", action="store_true")
    defaults = TrainControlNetConfig(stage="motion", data=Path(), out=Path())
    for name in ("steps", "batch_size", "lr", "lora_rank", "ortho_weight", "max_grad_norm",
                 "seed", "save_every", "log_every", "mixed_precision"):
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    history = train_controlnet(TrainControlNetConfig(**args))
    if history:
        print(json.dumps({"steps": history[-1]["step"], "loss": history[-1]["loss"],
                          "out": str(args["out"])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
