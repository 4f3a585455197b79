"""Controller step time (issue 6): CameraDiTModel against diffusers' WanTransformer3DModel.

Run from the repository root: ``.venv/bin/python benchmarks/controller.py [--size tiny]``.

One denoising step is one forward pass under ``torch.inference_mode`` (what a sampler pays per
step and per guidance branch). In the same run and on the same weights (the camera model is
``CameraDiTModel.from_wan(base)``), interleaved round-robin after warm-up, three variants:

- ``wan``: the base WanTransformer3DModel;
- ``camera``: CameraDiTModel with camera features (per-block projections), one shot;
- ``camera-2shot``: CameraDiTModel with camera features, two shots, 4D RoPE with a shot subspace
  and per-shot window cross-attention (the base model reads the same concatenated prompt).

Prints the median step time of each, the overhead of each camera variant over ``wan`` (target:
at most 3 %) and peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during one step; on the
CPU the peak RSS of a fresh process that builds the one model and runs one step.

Sizes: ``tiny`` (CPU, float32) and ``wan2.1-1.3b`` (GPU: 480x832, 81 frames, bf16, random
weights, 512 prompt tokens), which also reports achieved TFLOP/s (analytic matmul/attention FLOPs
of the Wan forward) against the device's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel  # noqa: E402

from backend.models.camera_dit import CameraDiTModel  # noqa: E402

SIZES = {
    # config, latent (C, F, H, W), prompt tokens (global, per shot)
    "tiny": (dict(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=32,
                  in_channels=16, out_channels=16, text_dim=64, freq_dim=32, ffn_dim=512,
                  num_layers=4), (16, 5, 16, 16), (32, 16)),
    "wan2.1-1.3b": (dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128,
                         in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
                         ffn_dim=8960, num_layers=30), (16, 21, 60, 104), (256, 128)),
}
# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0}
VARIANTS = ("wan", "camera", "camera-2shot")


def rope_allocation(head_dim: int) -> tuple[int, int, int, int]:
    """(shot, frame, height, width): an eighth each for shot and frame, the rest spatial."""
    shot = frame = 2 * (head_dim // 16)
    height = 2 * ((head_dim - shot - frame) // 4)
    return shot, frame, height, head_dim - shot - frame - height


def wan_forward_flops(config: dict, latent: tuple[int, ...], prompt_tokens: int) -> float:
    """Matmul and attention FLOPs of one Wan forward (2 per multiply-add)."""
    channels, frames, height, width = latent
    p_t, p_h, p_w = config["patch_size"]
    tokens = (frames // p_t) * (height // p_h) * (width // p_w)
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    per_layer = (
        8 * tokens * dim**2  # self-attention q, k, v, o
        + 4 * tokens**2 * dim  # QK^T and AV
        + 4 * tokens * dim**2 + 4 * prompt_tokens * dim**2  # cross-attention q, o and k, v
        + 4 * tokens * prompt_tokens * dim  # cross-attention scores and values
        + 4 * tokens * dim * config["ffn_dim"]  # feed-forward
    )
    patch = 2 * tokens * dim * channels * p_t * p_h * p_w
    out = 2 * tokens * dim * config["out_channels"] * p_t * p_h * p_w
    return config["num_layers"] * per_layer + patch + out


def build_inputs(size: str, device: torch.device, dtype: torch.dtype) -> dict[str, dict]:
    """Keyword arguments of each variant's forward."""
    config, latent, (global_tokens, shot_tokens) = SIZES[size]
    generator = torch.Generator().manual_seed(0)
    prompt_tokens = global_tokens + 2 * shot_tokens
    frames = latent[1]
    common = {
        "hidden_states": torch.randn(1, *latent, generator=generator),
        "timestep": torch.tensor([700]),
        "encoder_hidden_states": torch.randn(1, prompt_tokens, config["text_dim"],
                                             generator=generator),
    }
    common = {k: v.to(device, dtype if v.is_floating_point() else None)
              for k, v in common.items()}
    camera = torch.randn(1, frames, 48, generator=generator).to(device, dtype)
    shot_ids = torch.tensor([0] * (frames // 2) + [1] * (frames - frames // 2))
    encoder_shot_ids = torch.tensor([-1] * global_tokens + [0] * shot_tokens + [1] * shot_tokens)
    return {
        "wan": dict(common),
        "camera": {**common, "camera_features": camera},
        "camera-2shot": {**common, "camera_features": camera, "shot_ids": shot_ids,
                         "encoder_shot_ids": encoder_shot_ids.to(device)},
    }


def build_models(size: str, device: torch.device, dtype: torch.dtype,
                 variants: tuple[str, ...] = VARIANTS) -> dict[str, torch.nn.Module]:
    config = SIZES[size][0]
    torch.manual_seed(0)
    with torch.device(device):
        base = cast_like_from_pretrained(WanTransformer3DModel(**config), dtype).eval()
        models = {"wan": base}
        if "camera" in variants:
            models["camera"] = CameraDiTModel.from_wan(base).eval()
        if "camera-2shot" in variants:
            models["camera-2shot"] = CameraDiTModel.from_wan(
                base, rope_axes_dim=rope_allocation(config["attention_head_dim"])).eval()
    for model in models.values():
        if model is not base and model.camera_encoder is not None:
            with torch.no_grad():  # trained-looking, non-zero camera projections
                for layer in model.camera_encoder:
                    layer.weight.normal_(std=0.02)
    return {name: models[name] for name in variants}


def cast_like_from_pretrained(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast to ``dtype`` but keep ``_keep_in_fp32_modules`` in float32, as from_pretrained does."""
    if dtype == torch.float32:
        return model
    keep = set(model._keep_in_fp32_modules)
    for name, module in model.named_modules():
        parts = set(name.split("."))
        for parameter_name, parameter in module.named_parameters(recurse=False):
            wanted = torch.float32 if parts & keep or parameter_name in keep else dtype
            parameter.data = parameter.data.to(wanted)
    return model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def step(model: torch.nn.Module, kwargs: dict, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    model(**kwargs, return_dict=False)
    synchronize(device)
    return time.perf_counter() - start


def cpu_peak_rss_mib(size: str, variant: str) -> float:
    """Peak RSS of a fresh process that builds one model and runs one step (CPU only)."""
    out = subprocess.run([sys.executable, __file__, "--size", size, "--probe", variant],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def probe(size: str, variant: str) -> None:
    device, dtype = torch.device("cpu"), torch.float32
    model = build_models(size, device, dtype, ("wan",) if variant == "wan" else ("wan", variant))
    inputs = build_inputs(size, device, dtype)[variant]
    step(model[variant], inputs, device)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def device_peak(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak, when it is not in the table")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for --size tiny (1 keeps a shared machine's noise low)")
    parser.add_argument("--probe", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.size, args.probe)
        return

    gpu = args.size != "tiny"
    if gpu and not torch.cuda.is_available():
        sys.exit(f"--size {args.size} needs a CUDA GPU")
    device = torch.device("cuda" if gpu else "cpu")
    if not gpu:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if gpu else torch.float32
    repeats = args.repeats or (10 if gpu else 30)

    models = build_models(args.size, device, dtype)
    inputs = build_inputs(args.size, device, dtype)
    for _ in range(args.warmup):
        for name in VARIANTS:
            step(models[name], inputs[name], device)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name in VARIANTS:
            times[name].append(step(models[name], inputs[name], device))

    peaks: dict[str, float] = {}
    for name in VARIANTS:
        if gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            step(models[name], inputs[name], device)
            peaks[name] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            peaks[name] = cpu_peak_rss_mib(args.size, name)

    config, latent, (global_tokens, shot_tokens) = SIZES[args.size]
    where = torch.cuda.get_device_name(device) if gpu else (
        f"CPU, {torch.get_num_threads()} threads ({platform.processor() or platform.machine()})")
    print(f"machine: {where}; torch {torch.__version__}, Python {platform.python_version()}")
    print(f"size: {args.size}, latent {latent}, {config['num_layers']} layers, "
          f"dim {config['num_attention_heads'] * config['attention_head_dim']}, "
          f"prompt {global_tokens + 2 * shot_tokens} tokens, {dtype}; "
          f"{repeats} timed steps per variant")
    memory = "peak allocated" if gpu else "peak RSS"
    flops = wan_forward_flops(config, latent, global_tokens + 2 * shot_tokens)
    peak = device_peak(device, args.peak_tflops)
    base_median = statistics.median(times["wan"])
    for name in VARIANTS:
        median = statistics.median(times[name])
        line = (f"{name:13s} median {median * 1e3:9.2f} ms  min {min(times[name]) * 1e3:9.2f} "
                f"ms  {memory} {peaks[name]:9.1f} MiB")
        if name != "wan":
            line += f"  overhead {100 * (median / base_median - 1):+5.1f} %"
        if gpu:
            achieved = flops / median / 1e12
            line += f"  {achieved:6.1f} TFLOP/s"
            if peak:
                line += f" ({100 * achieved / peak:4.1f} % of {peak:.0f})"
        print(line)
    base_params = sum(p.numel() for p in models["wan"].parameters())
    extra = sum(p.numel() for p in models["camera"].parameters()) - base_params
    print(f"parameters: wan {base_params / 1e6:.2f} M, camera projections +{extra / 1e6:.3f} M "
          f"({100 * extra / base_params:.2f} %)")
    print("target: overhead <= 3 %")


if __name__ == "__main__":
    main()
