"""Train the camera controller (ShotVerse §3.3): camera encoder + LoRA on Wan, in two stages.

``python -m backend train controller --base WAN_DIR --data DIR --out DIR --stage high|low``
(``accelerate launch -m backend train controller ...`` for several GPUs; for the 14B experts of
Wan 2.2 add ``--config_file backend/training/fsdp_wan14b.yaml``, FSDP sharding every
``CameraWanTransformerBlock`` over 8 GPUs, and ``--gradient-checkpointing``):

- ``high``: the camera encoder and a LoRA on the attention projections of the high-noise expert
  (``transformer``), on noise levels ``sigma >= boundary`` (0.875, Wan 2.2's switch);
- ``low``: a LoRA only, on the low-noise expert (``transformer_2`` of a Wan 2.2 base, else the
  one transformer of Wan 2.1), on ``sigma < boundary``. ``--camera-from`` loads the high stage's
  camera encoder, frozen (the low stage reads the camera through it but does not train it).

The objective is Wan's flow matching: ``x_t = (1 - sigma) x_0 + sigma eps``, the transformer
predicts ``eps - x_0`` (MSE). ``sigma`` is drawn uniformly in the stage's range of the shifted
schedule (``shift``, as the flow-matching scheduler shifts at inference), so the boundary means
the same as in :class:`~backend.pipelines.camera_dit.CameraDiTPipeline`. The text encoder and VAE
are frozen.

Data: a folder of ``<name>.mp4`` + ``<name>.shots.json`` (a ShotSequence; video frame ``i`` is
timeline frame ``sequence.frame_start + i``; prompts from the sequence and its shots). Every shot
is sampled at ``--frames-per-shot`` (``4k + 1``) evenly spaced frames, resized to ``--height`` x
``--width``, and VAE-encoded as its own clip; the camera comes from the same positions through the
camera core, as the pipeline does.

Outputs: ``OUT/`` (at the end) and ``OUT/checkpoints/step-NNNNNNN/camera_dit/`` (every
``--save-every`` steps) are camera folders (``config.json``, ``camera_dit.safetensors``,
``pytorch_lora_weights.safetensors``) for the generator's ``camera_encoder`` /
``camera_encoder_2`` key. ``OUT/checkpoints/step-NNNNNNN/`` also holds accelerate's state
(model as safetensors, optimizer, RNG) for ``--resume``; it holds the frozen base weights too, so
only the last ``--keep-checkpoints`` are kept. Noise, noise levels and samples are drawn from a
generator seeded by the step, so a resumed run continues exactly. Losses go to
``OUT/train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("high", "low")
BOUNDARY = 0.875
TRAINER_STATE = "trainer_state.json"
CAMERA_FOLDER = "camera_dit"
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass
class TrainControllerConfig:
    """Settings of one training stage."""

    base: Path
    """Wan folder in diffusers layout (tokenizer, text_encoder, vae, transformer[_2])."""
    data: Path
    """Folder of ``<name>.mp4`` + ``<name>.shots.json``."""
    out: Path
    """Output folder (camera folder, checkpoints, log)."""
    stage: str = "high"
    """``high`` (camera encoder + LoRA, sigma >= boundary) or ``low`` (LoRA, sigma < boundary)."""
    camera_from: Path | None = None
    """A camera folder to start from (its config and camera weights), e.g. the high stage's."""
    steps: int = 1000
    """Optimizer steps."""
    lr: float = 1e-4
    """AdamW learning rate."""
    lora_rank: int = 32
    """LoRA rank on the attention projections."""
    frames_per_shot: int = 33
    """Frames sampled per shot (``4k + 1``)."""
    height: int = 480
    """Training height (a multiple of 16)."""
    width: int = 832
    """Training width (a multiple of 16)."""
    max_sequence_length: int = 512
    """Prompt tokens each shot reads (global + its own)."""
    shift: float = 5.0
    """Shift of the flow-matching noise schedule."""
    boundary: float = BOUNDARY
    """Noise level where the experts switch."""
    rope_axes_dim: tuple[int, int, int, int] | None = None
    """``(shot, frame, height, width)`` RoPE channels of a new camera model (``None``: Wan's)."""
    rope_max_shots: int = 16
    """Most shots per video of a new camera model."""
    seed: int = 0
    """Seed of samples, noise levels and noise."""
    save_every: int = 500
    """Checkpoint interval in steps."""
    keep_checkpoints: int = 2
    """How many checkpoints to keep."""
    log_every: int = 10
    """Print interval in steps."""
    resume: bool = False
    """Continue from the latest checkpoint in ``out``."""
    mixed_precision: str = "no"
    """``no``, ``fp16`` or ``bf16`` (frozen weights in that dtype, trained ones in float32)."""
    gradient_checkpointing: bool = False
    """Recompute block activations in the backward pass (needed for the 14B experts)."""
    cache_latents: bool = True
    """Keep encoded samples in memory (VAE and text encoder run once per sample)."""


# --------------------------------------------------------------------------------------------
# Data


def read_video(path: Path) -> np.ndarray:
    """uint8 (F, H, W, 3) frames of a video file (imageio-ffmpeg)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader]
    return np.stack(frames)


def find_samples(data: Path) -> list[tuple[Path, Path]]:
    """``(video, shots)`` pairs of the folder; ValueError naming what is missing."""
    pairs = []
    for shots in sorted(Path(data).glob("*.shots.json")):
        video = shots.with_name(shots.name[: -len(".shots.json")] + ".mp4")
        if not video.is_file():
            raise ValueError(f"--data: {shots.name} has no video {video.name}")
        pairs.append((video, shots))
    if not pairs:
        raise ValueError(f"--data: no <name>.shots.json + <name>.mp4 pairs in {data}")
    return pairs


def shot_clips(frames: np.ndarray, sequence: Any, frames_per_shot: int) -> list[np.ndarray]:
    """Per shot, uint8 (frames_per_shot, H, W, 3): evenly spaced over the shot (nearest frame),
    at the positions :func:`~backend.camera.resample.times_for_count` gives the camera."""
    from backend.camera.resample import times_for_count

    clips = []
    for shot in sequence.shots:
        positions = np.rint(times_for_count(shot.num_frames, frames_per_shot)).astype(int)
        index = positions + shot.frame_start - sequence.frame_start
        if index.max() >= len(frames):
            raise ValueError(f"shot {shot.name!r} ends at video frame {index.max()} but the "
                             f"video has {len(frames)} frames")
        clips.append(frames[index])
    return clips


def sample_sigmas(count: int, stage: str, shift: float, boundary: float,
                  generator: Any) -> Any:
    """Noise levels (count,) in the stage's range of the shifted schedule.

    ``sigma = shift u / (1 + (shift - 1) u)`` with ``u`` uniform over the stage's part of (0, 1).
    """
    import torch

    u_boundary = boundary / (shift - (shift - 1.0) * boundary)  # the inverse shift
    low, high = (u_boundary, 1.0) if stage == "high" else (0.0, u_boundary)
    u = low + (high - low) * torch.rand(count, generator=generator)
    return shift * u / (1.0 + (shift - 1.0) * u)


# --------------------------------------------------------------------------------------------
# Model


def build_model(config: TrainControllerConfig, dtype: Any) -> Any:
    """The camera model of the stage's expert, with a LoRA; only the stage's parts trainable."""
    import safetensors.torch
    from diffusers import WanTransformer3DModel
    from peft import LoraConfig

    from backend.models.camera_dit import CAMERA_WEIGHTS_NAME, WAN_CONFIG_KEYS, CameraDiTModel

    subfolder = "transformer"
    if config.stage == "low" and (config.base / "transformer_2" / "config.json").is_file():
        subfolder = "transformer_2"
    base = WanTransformer3DModel.from_pretrained(config.base, subfolder=subfolder,
                                                 torch_dtype=dtype)
    if config.camera_from is not None:
        saved = CameraDiTModel.load_config(config.camera_from)
        camera_config = {k: v for k, v in saved.items()
                         if k not in WAN_CONFIG_KEYS and not k.startswith("_")}
        model = CameraDiTModel.from_wan(base, **camera_config)
        weights = safetensors.torch.load_file(config.camera_from / CAMERA_WEIGHTS_NAME)
        model.load_state_dict(weights, strict=False)
    else:
        model = CameraDiTModel.from_wan(base, rope_axes_dim=config.rope_axes_dim,
                                        rope_max_shots=config.rope_max_shots)
    del base
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank,
                                 init_lora_weights=True, target_modules=list(LORA_TARGETS)))
    if config.stage == "high" and model.camera_encoder is not None:
        model.camera_encoder.requires_grad_(True)
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()  # trained weights in float32
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    return model.train()


def encode_sample(pipe: Any, video: Path, shots: Path, config: TrainControllerConfig,
                  device: Any) -> dict[str, Any]:
    """Latents, prompt embeddings, camera features (and image condition) of one sample."""
    import torch
    import torch.nn.functional as F

    from backend.pipelines.camera_dit import ShotLayout, shot_camera_features
    from backend.shots import load

    sequence = load(shots)
    clips = shot_clips(read_video(video), sequence, config.frames_per_shot)
    counts = [config.frames_per_shot] * len(clips)
    layout = ShotLayout(tuple(s.name for s in sequence.shots), tuple(counts))
    latents, first = [], None
    with torch.no_grad():
        for clip in clips:
            # (F, H, W, 3) uint8 -> (1, 3, F, h, w) in -1..1
            pixels = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            pixels = F.interpolate(pixels, size=(config.height, config.width), mode="bilinear",
                                   antialias=True, align_corners=False)
            first = pixels[:1] if first is None else first
            pixels = pixels.permute(1, 0, 2, 3)[None].to(pipe.vae.device, pipe.vae.dtype)
            latent = pipe.vae.encode(pixels).latent_dist.mode()
            latents.append(pipe._normalize(latent.to(device, torch.float32)))
        embeds, encoder_shot_ids = pipe.encode_shot_prompts(
            sequence.prompt, [s.prompt for s in sequence.shots], config.max_sequence_length,
            device)
        condition = None
        if pipe.is_image_to_video:
            condition = pipe.prepare_image_condition(first.to(device), 1, layout, device)
    features, shot_ids = shot_camera_features(sequence.shots, counts)
    return {"latents": torch.cat(latents, dim=2), "embeds": embeds,
            "encoder_shot_ids": encoder_shot_ids, "camera": torch.from_numpy(features)[None],
            "shot_ids": torch.from_numpy(shot_ids), "condition": condition}


def flow_matching_loss(model: Any, sample: dict[str, Any], sigma: Any, noise: Any,
                       use_camera: bool = True, dtype: Any = None) -> Any:
    """Wan's flow-matching loss of one sample at noise level ``sigma`` (1,) with ``noise``.

    ``dtype``: of the model's frozen weights (inputs are cast to it); ``use_camera``: feed the
    camera features (False for a model without a camera encoder).
    """
    import torch
    import torch.nn.functional as F

    x0 = sample["latents"]
    device = x0.device
    sigma = sigma.to(device).view(-1, 1, 1, 1, 1)
    noise = noise.to(device)
    noisy = (1.0 - sigma) * x0 + sigma * noise  # x_t
    target = noise - x0  # the flow Wan predicts
    if sample["condition"] is not None:
        noisy = torch.cat([noisy, sample["condition"]], dim=1)
    dtype = dtype or x0.dtype
    kwargs = {"shot_ids": sample["shot_ids"].to(device),
              "encoder_shot_ids": sample["encoder_shot_ids"].to(device)}
    if use_camera:
        kwargs["camera_features"] = sample["camera"].to(device, dtype)
    prediction = model(hidden_states=noisy.to(dtype), timestep=sigma.view(-1) * 1000.0,
                       encoder_hidden_states=sample["embeds"].to(device, dtype),
                       return_dict=False, **kwargs)[0]
    return F.mse_loss(prediction.float(), target.float())


# --------------------------------------------------------------------------------------------
# Checkpoints


def export_camera_folder(accelerator: Any, model: Any, directory: Path) -> None:
    """Write a camera folder (config, camera weights, LoRA; safetensors) from the gathered
    state, so that it works under FSDP as well (the same files as ``save_camera_pretrained``)."""
    import safetensors.torch
    from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY
    from peft.utils import get_peft_model_state_dict

    from backend.models.camera_dit import CAMERA_PREFIXES, CAMERA_WEIGHTS_NAME, LORA_WEIGHTS_NAME

    state = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    unwrapped.save_config(directory)
    camera = {k: v.detach().cpu().contiguous() for k, v in state.items()
              if k.startswith(CAMERA_PREFIXES)}
    safetensors.torch.save_file(camera, directory / CAMERA_WEIGHTS_NAME, metadata={"format": "pt"})
    lora = get_peft_model_state_dict(unwrapped, state_dict=state, adapter_name="default")
    lora = {k: v.detach().cpu().contiguous() for k, v in lora.items()}
    adapter = {k: sorted(v) if isinstance(v, set) else v
               for k, v in unwrapped.peft_config["default"].to_dict().items()}
    metadata = {"format": "pt", LORA_ADAPTER_METADATA_KEY: json.dumps(adapter, sort_keys=True)}
    safetensors.torch.save_file(lora, directory / LORA_WEIGHTS_NAME, metadata=metadata)


def checkpoints(out: Path) -> list[Path]:
    """Checkpoint folders of ``out``, oldest first."""
    return sorted((out / "checkpoints").glob("step-*"))


def save_checkpoint(accelerator: Any, model: Any, out: Path, step: int, keep: int) -> Path:
    directory = out / "checkpoints" / f"step-{step:07d}"
    accelerator.save_state(str(directory), safe_serialization=True)
    export_camera_folder(accelerator, model, directory / CAMERA_FOLDER)
    if accelerator.is_main_process:
        (directory / TRAINER_STATE).write_text(json.dumps({"step": step}))
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return directory


# --------------------------------------------------------------------------------------------
# Training


def train_controller(config: TrainControllerConfig) -> list[dict[str, float]]:
    """Run one stage; returns the per-step ``{"step", "loss", "sigma"}`` of this run."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    from backend.pipelines.camera_dit import CameraDiTPipeline

    if config.stage not in STAGES:
        raise ValueError(f"--stage: {config.stage!r} is not one of {STAGES}")
    if config.frames_per_shot < 1 or (config.frames_per_shot - 1) % 4:
        raise ValueError(f"--frames-per-shot: {config.frames_per_shot} is not 4k + 1")
    for key in ("height", "width"):
        if getattr(config, key) % 16:
            raise ValueError(f"--{key}: {getattr(config, key)} is not a multiple of 16")
    samples = find_samples(config.data)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)  # the LoRA's initial weights
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.mixed_precision,
                                                                 torch.float32)
    device = accelerator.device
    tokenizer = AutoTokenizer.from_pretrained(config.base, subfolder="tokenizer")
    text_encoder = UMT5EncoderModel.from_pretrained(config.base, subfolder="text_encoder",
                                                    torch_dtype=dtype).to(device).eval()
    vae = AutoencoderKLWan.from_pretrained(config.base, subfolder="vae",
                                           torch_dtype=torch.float32).to(device).eval()
    model = build_model(config, dtype)
    # The pipeline's own encoders, so that training sees what inference gives the model.
    pipe = CameraDiTPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                             scheduler=None, transformer=model)
    use_camera = model.camera_encoder is not None
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)

    step = 0
    if config.resume and checkpoints(config.out):
        latest = checkpoints(config.out)[-1]
        accelerator.load_state(str(latest))
        step = json.loads((latest / TRAINER_STATE).read_text())["step"]
    cache: dict[int, dict[str, Any]] = {}
    history: list[dict[str, float]] = []
    log = config.out / "train_log.jsonl"
    config.out.mkdir(parents=True, exist_ok=True)
    while step < config.steps:
        # Everything random is drawn from the step's own generator: a resumed run continues.
        generator = torch.Generator().manual_seed(
            config.seed * 1_000_003 + step * 1009 + accelerator.process_index)
        index = int(torch.randint(len(samples), (1,), generator=generator))
        sample = cache.get(index) or encode_sample(pipe, *samples[index], config, device)
        if config.cache_latents:
            cache[index] = sample
        sigma = sample_sigmas(1, config.stage, config.shift, config.boundary, generator)
        noise = torch.randn(sample["latents"].shape, generator=generator)
        with accelerator.autocast():
            loss = flow_matching_loss(model, sample, sigma, noise, use_camera, dtype)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_value = float(accelerator.reduce(loss.detach(), reduction="mean"))
        record = {"step": step, "loss": loss_value, "sigma": float(sigma[0])}
        history.append(record)
        if accelerator.is_main_process:
            with log.open("a") as file:
                file.write(json.dumps(record) + "\n")
            if step % config.log_every == 0:
                print(json.dumps(record), flush=True)
        if step % config.save_every == 0 or step == config.steps:
            save_checkpoint(accelerator, model, config.out, step, config.keep_checkpoints)
    export_camera_folder(accelerator, model, config.out)
    accelerator.wait_for_everyone()
    return history


# --------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``train controller`` options (no torch imported)."""
    parser.add_argument("--base", required=True, type=Path,
                        help="Wan folder in diffusers layout (Wan 2.1 or 2.2, T2V or I2V)")
    parser.add_argument("--data", required=True, type=Path,
                        help="folder of <name>.mp4 + <name>.shots.json")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--stage", choices=STAGES, default="high",
                        help="high: camera encoder + LoRA, sigma >= 0.875; low: LoRA, sigma < "
                             "0.875 (default: %(default)s)")
    parser.add_argument("--camera-from", type=Path,
                        help="camera folder to start from (the high stage's, for --stage low)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--lora-rank", type=int, default=32)
    parser.add_argument("--frames-per-shot", type=int, default=33, help="4k+1 frames per shot")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--max-sequence-length", type=int, default=512)
    parser.add_argument("--shift", type=float, default=5.0, help="noise schedule shift")
    parser.add_argument("--rope-axes-dim", type=lambda s: tuple(int(v) for v in s.split(",")),
                        help="shot,frame,height,width RoPE channels (default: Wan's, no shot "
                             "subspace)")
    parser.add_argument("--rope-max-shots", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--keep-checkpoints", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in --out")
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--no-cache-latents", dest="cache_latents", action="store_false")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    """Run ``train controller`` from parsed arguments."""
    keys = TrainControllerConfig.__dataclass_fields__.keys()
    config = TrainControllerConfig(**{k: getattr(args, k) for k in keys if hasattr(args, k)})
    history = train_controller(config)
    if history:
        print(json.dumps({"steps": history[-1]["step"], "loss": history[-1]["loss"],
                          "out": str(config.out)}))
    return 0
