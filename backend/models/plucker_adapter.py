"""Plücker-ray camera adapter, laid out like VideoX-Fun's Wan "Control-Camera" models.

VideoX-Fun (``videox_fun/models/wan_camera_adapter.py``, ``SimpleAdapter``) conditions Wan on
per-pixel Plücker rays ``[o x d, d]`` (:func:`backend.camera.plucker.plucker_embedding` with
``order="oxd_d"``). Its pipeline (``pipeline_wan_fun_control.py``) repeats frame 0 four times,
packs the 4 frames of each latent frame into the channels (``channel = 4 * c + k`` for ray channel
``c`` of the group's ``k``-th frame: 6 x 4 = 24 channels), and the adapter pixel-unshuffles each
latent frame by 8, projects it with a patch-sized convolution to the model width and adds the
result to the patch embeddings. :func:`pack_plucker_frames` is that packing;
:class:`PluckerCameraAdapter` keeps the adapter's module names so its checkpoints load unchanged
(:func:`convert_videox_fun_state_dict`).
"""

from __future__ import annotations

import torch
from torch import nn

from backend.camera.resample import WAN_TEMPORAL_COMPRESSION

VIDEOX_FUN_ADAPTER_PREFIX = "control_adapter."
ADAPTER_PREFIX = "plucker_adapter."
PLUCKER_CHANNELS = 6


def pack_plucker_frames(
    rays: torch.Tensor, compression: int = WAN_TEMPORAL_COMPRESSION
) -> torch.Tensor:
    """Pack per-frame rays into latent frames, VideoX-Fun's layout.

    rays: (B, F, 6, H, W) with ``F = 4k + 1`` -> (B, 6 * 4, k + 1, H, W). Latent frame 0 holds
    frame 0 repeated four times; channel ``4 * c + j`` is ray channel ``c`` of the group's
    ``j``-th frame.
    """
    if rays.ndim != 5:
        raise ValueError(f"rays must be (batch, frames, channels, height, width), got "
                         f"{tuple(rays.shape)}")
    batch, frames, channels, height, width = rays.shape
    if (frames - 1) % compression:
        raise ValueError(f"rays must cover {compression}k + 1 frames, got {frames}")
    first = rays[:, :1].expand(-1, compression, -1, -1, -1)
    rays = torch.cat([first, rays[:, 1:]], dim=1)  # (B, 4 * (k + 1), C, H, W)
    # (B, F', 4, C, H, W) -> (B, F', C, 4, H, W) -> (B, F', 4C, H, W) -> (B, 4C, F', H, W)
    rays = rays.view(batch, -1, compression, channels, height, width).transpose(2, 3)
    rays = rays.reshape(batch, -1, channels * compression, height, width)
    return rays.transpose(1, 2).contiguous()


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip: ``x + conv2(relu(conv1(x)))``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class PluckerCameraAdapter(nn.Module):
    """Packed Plücker rays -> patch-embedding features (VideoX-Fun ``SimpleAdapter`` layout).

    Args:
        in_channels: packed ray channels (24 = 6 rays x 4 frames).
        out_dim: the transformer width.
        patch_size: ``(p_h, p_w)`` of the patch embedding (kernel and stride of ``conv``).
        downscale_factor: pixel-unshuffle factor, the VAE's spatial compression (8 for Wan).
        num_residual_blocks: residual blocks after the projection.
        zero_init: zero the last layers so that a new adapter adds nothing until trained.
    """

    def __init__(
        self,
        in_channels: int,
        out_dim: int,
        patch_size: tuple[int, int],
        downscale_factor: int = 8,
        num_residual_blocks: int = 1,
        zero_init: bool = True,
    ):
        super().__init__()
        self.pixel_unshuffle = nn.PixelUnshuffle(downscale_factor)
        self.conv = nn.Conv2d(in_channels * downscale_factor**2, out_dim, kernel_size=patch_size,
                              stride=patch_size)
        self.residual_blocks = nn.Sequential(
            *[ResidualBlock(out_dim) for _ in range(num_residual_blocks)])
        if zero_init:
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
            for block in self.residual_blocks:
                nn.init.zeros_(block.conv2.weight)
                nn.init.zeros_(block.conv2.bias)

    def forward(self, rays: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) packed rays at pixel size -> (B, out_dim, F, H', W') at patch size."""
        batch, channels, frames, height, width = rays.shape
        x = rays.transpose(1, 2).reshape(batch * frames, channels, height, width)
        x = self.residual_blocks(self.conv(self.pixel_unshuffle(x)))
        x = x.view(batch, frames, *x.shape[1:])
        return x.transpose(1, 2)


def convert_videox_fun_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A VideoX-Fun Wan Control-Camera checkpoint -> :class:`CameraDiTModel` keys.

    The adapter (``control_adapter.*``) keeps its sub-module names under ``plucker_adapter.``; the
    Wan part is in the original Wan layout and goes through diffusers' own converter
    (:func:`diffusers.loaders.single_file_utils.convert_wan_transformer_to_diffusers`). Keys the
    model does not have (e.g. a reference-image ``ref_conv``) come back unchanged, for the caller's
    ``load_state_dict(strict=False)`` to report.
    """
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    adapter, base = {}, {}
    for key, value in state_dict.items():
        if key.startswith(VIDEOX_FUN_ADAPTER_PREFIX):
            adapter[ADAPTER_PREFIX + key.removeprefix(VIDEOX_FUN_ADAPTER_PREFIX)] = value
        else:
            base[key] = value
    return {**convert_wan_transformer_to_diffusers(base), **adapter}


def wan_config_from_videox_fun(config: dict) -> dict:
    """Diffusers ``WanTransformer3DModel`` arguments from a VideoX-Fun / original Wan config.json.

    Reads ``dim, ffn_dim, freq_dim, num_heads, num_layers, in_dim, out_dim, text_dim, eps`` and
    ``model_type`` (``"i2v"`` adds the CLIP image branch) plus the adapter's
    ``in_dim_control_adapter`` / ``downscale_factor_control_adapter``.
    """
    heads = int(config["num_heads"])
    dim = int(config["dim"])
    out = {
        "num_attention_heads": heads,
        "attention_head_dim": dim // heads,
        "in_channels": int(config["in_dim"]),
        "out_channels": int(config["out_dim"]),
        "text_dim": int(config.get("text_dim", 4096)),
        "freq_dim": int(config.get("freq_dim", 256)),
        "ffn_dim": int(config["ffn_dim"]),
        "num_layers": int(config["num_layers"]),
        "cross_attn_norm": bool(config.get("cross_attn_norm", True)),
        "eps": float(config.get("eps", 1e-6)),
    }
    if config.get("model_type") == "i2v":
        out.update(image_dim=1280, added_kv_proj_dim=dim)
    if config.get("add_control_adapter"):
        out["plucker_in_channels"] = int(config.get("in_dim_control_adapter", 24))
        out["plucker_downscale_factor"] = int(config.get("downscale_factor_control_adapter", 8))
    return out
