"""Trajectory ControlNet step time (issue 7): denoising step with and without camera-free guidance.

Run from the repository root: ``.venv/bin/python benchmarks/controlnet.py`` (tiny models, CPU)
or ``.venv/bin/python benchmarks/controlnet.py --size sd15 --device cuda`` (AnimateDiff SD1.5
size: UNetMotionModel with SD1.5's UNet config, motion modules, both ControlNets, CLIP ViT-L text
encoder, 16 frames at 384 x 256, fp16 on a GPU; random weights, so nothing is downloaded and the
arithmetic is the real model's).

Each configuration runs the real :class:`TrajectoryControlNetPipeline` loop and times every
denoising step from the pipeline's step callback (the first step is a warm-up and is dropped):

- ``cfg``: plain classifier-free guidance, object LoRA on the motion ControlNet (2 branches);
- ``camera-free``: Eq. 5, unconditional + conditional with the base ControlNet + conditional with
  the object LoRA (3 branches in the UNet and the image ControlNet, the motion ControlNet run
  twice: once for 2 rows without LoRA, once for 1 row with it).

It prints the median and p90 step time of each and the ratio camera-free / cfg.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from backend.pipelines.trajectory_controlnet import (  # noqa: E402
    TrajectoryControlNetPipeline,
    build_tiny_pipeline,
)


def build_sd15_pipeline(dtype: torch.dtype, lora_rank: int = 64) -> TrajectoryControlNetPipeline:
    """Random weights at AnimateDiff SD1.5 size (v3 motion modules, SparseCtrl RGB)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNetMotionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from backend.generators.smoke import build_tokenizer
    from backend.models.trajectory_controlnet import (
        CAMERA_ADAPTER,
        OBJECT_ADAPTER,
        TrajectoryControlNetModel,
        add_motion_lora,
        image_controlnet_from_unet,
    )

    torch.manual_seed(0)
    tokenizer = build_tokenizer(77)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=768,
                                                intermediate_size=3072, num_hidden_layers=12,
                                                num_attention_heads=12,
                                                max_position_embeddings=77))
    unet = UNetMotionModel(cross_attention_dim=768, num_attention_heads=8,
                           motion_num_attention_heads=8, motion_max_seq_length=32)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2)
    controlnet = TrajectoryControlNetModel.from_unet(unet)
    for name in (CAMERA_ADAPTER, OBJECT_ADAPTER):
        add_motion_lora(controlnet, name, rank=lora_rank)
    scheduler = DDIMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, timestep_spacing="linspace", steps_offset=1)
    pipeline = TrajectoryControlNetPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        controlnet=controlnet, scheduler=scheduler,
        image_controlnet=image_controlnet_from_unet(unet))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(dtype=dtype)


def step_times(pipeline: TrajectoryControlNetPipeline, flows: torch.Tensor, image: torch.Tensor,
               steps: int, device: torch.device, **kwargs: object) -> list[float]:
    """Seconds of each denoising step after the first."""
    marks: list[float] = []

    def mark(pipe: object, step: int, t: object, callback_kwargs: dict) -> dict:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        marks.append(time.perf_counter())
        return callback_kwargs

    pipeline("a robot walks across the plaza", flows, image=image, num_inference_steps=steps,
             guidance_scale=8.5, generator=torch.Generator(device).manual_seed(0),
             output_type="latent", callback_on_step_end=mark, **kwargs)
    return [b - a for a, b in itertools.pairwise(marks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.size == "sd15":
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        pipeline = build_sd15_pipeline(dtype).to(device)
        frames, height, width, steps = 16, 256, 384, args.steps or 10
    else:
        pipeline = build_tiny_pipeline(seed=0).to(device)
        frames, height, width, steps = 8, 32, 48, args.steps or 6
    flows = torch.randn(frames, 2, height, width, generator=torch.Generator().manual_seed(0))
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(1))
    runs = {
        "cfg": {"adapter_names": "object"},
        "camera-free": {"adapter_names": "object", "trajectory_guidance_scale": 1.2},
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    step_times(pipeline, flows, image, 2, device, **runs["cfg"])  # warm-up
    for _ in range(args.repeats):  # interleaved, so that load drifts hit both alike
        for name, kwargs in runs.items():
            times[name] += step_times(pipeline, flows, image, steps, device, **kwargs)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{torch.get_num_threads()} CPU threads, {platform.processor() or platform.machine()}")
    print(f"device: {name}; torch {torch.__version__}; size {args.size}: {frames} frames "
          f"{width}x{height}, dtype {pipeline.unet.dtype}")
    medians = {}
    for label, values in times.items():
        values = sorted(values)
        medians[label] = statistics.median(values)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"{label:12s} step: median {1000 * medians[label]:9.1f} ms   p90 "
              f"{1000 * p90:9.1f} ms   (n={len(values)})")
    print(f"ratio camera-free / cfg (medians): {medians['camera-free'] / medians['cfg']:.2f}x")


if __name__ == "__main__":
    main()
