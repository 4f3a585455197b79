"""The controller's video transformer (ShotVerse §3.3): Wan plus camera injection and 4D RoPE.

:class:`CameraDiTModel` is diffusers' :class:`WanTransformer3DModel` (same modules, same
state-dict keys, so Wan weights load unchanged into the base part) with:

- a per-block, zero-initialised camera projection ``camera_encoder[i]`` from per-latent-frame pose
  features (the relative c2w 3x4 of the 4 frames a latent frame covers, concatenated: 48 numbers,
  :func:`camera_features_from_poses`), added to the normalised hidden states before
  self-attention: ``x = x + attn1(norm1(x) + E_i(c))``;
- 4D RoPE over ``(shot, frame, height, width)`` (:mod:`backend.models.rope4d`);
- per-shot prompts: each shot's tokens cross-attend to the global prompt and their own shot's
  prompt only (:class:`ShotWindowCrossAttnProcessor`, HoloCine's window cross-attention);
- optionally, the Plücker-ray adapter of VideoX-Fun's Control-Camera models on the patch
  embeddings (:mod:`backend.models.plucker_adapter`).

With the camera projections at zero, one shot and no shot subspace in the RoPE, the output is the
base Wan model's. Camera parts and LoRA are saved next to the base model's folder
(:meth:`CameraDiTModel.save_camera_pretrained` / :meth:`CameraDiTModel.from_camera_pretrained`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import safetensors.torch
import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanAttnProcessor,
    WanTransformer3DModel,
    WanTransformerBlock,
)
from diffusers.utils import apply_lora_scale
from torch import nn

from backend.camera.pose12 import c2w_3x4_flat
from backend.camera.resample import WAN_TEMPORAL_COMPRESSION, latent_frame_groups
from backend.camera.se3 import relative_to_first_shot
from backend.models.plucker_adapter import ADAPTER_PREFIX, PluckerCameraAdapter
from backend.models.rope4d import ShotRotaryPosEmbed

POSE_FEATURES = 12  # the 3x4 of one frame's c2w
CAMERA_DIM = POSE_FEATURES * WAN_TEMPORAL_COMPRESSION  # 48: four frames per latent frame
GLOBAL_PROMPT_ID = -1  # encoder_shot_ids value of the global prompt's tokens
CAMERA_PREFIXES = ("camera_encoder.", ADAPTER_PREFIX)
CAMERA_WEIGHTS_NAME = "camera_dit.safetensors"
LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
WAN_CONFIG_KEYS = tuple(
    name for name in inspect.signature(WanTransformer3DModel.__init__).parameters if name != "self")

# --------------------------------------------------------------------------------------------
# Helpers


def camera_features_from_poses(
    c2w_rel: np.ndarray, compression: int = WAN_TEMPORAL_COMPRESSION
) -> np.ndarray:
    """Per-latent-frame camera features of one ``4k + 1``-frame video.

    c2w_rel: (F, 4, 4) poses relative to the reference frame (see
    :func:`backend.camera.se3.relative_to_first_shot`) -> (F_latent, 12 * 4) float32: the
    :func:`~backend.camera.pose12.c2w_3x4_flat` rows of the frames each latent frame covers
    (:func:`~backend.camera.resample.latent_frame_groups`), concatenated; latent frame 0 covers
    frame 0 alone and repeats it.
    """
    flat = c2w_3x4_flat(np.asarray(c2w_rel, dtype=np.float64))  # (F, 12)
    rows = [flat[np.repeat(group, compression // len(group))].reshape(-1)
            for group in latent_frame_groups(len(flat), compression)]
    return np.stack(rows).astype(np.float32)


def camera_features_from_shots(
    shots_c2w: Sequence[np.ndarray], compression: int = WAN_TEMPORAL_COMPRESSION
) -> tuple[np.ndarray, np.ndarray]:
    """Camera features and latent shot ids of shots encoded one after another.

    shots_c2w: per shot (N_k, 4, 4) world poses, each ``N_k = 4 m + 1`` (each shot its own VAE
    clip). Poses are made relative to frame 0 of the first shot (one shared frame, so cuts keep
    their spatial relation). Returns ``(features (sum F_k, 48), shot_ids (sum F_k,) int64)``.
    """
    features = [camera_features_from_poses(c2w, compression)
                for c2w in relative_to_first_shot(shots_c2w)]
    shot_ids = np.concatenate([np.full(len(f), k, dtype=np.int64)
                               for k, f in enumerate(features)])
    return np.concatenate(features), shot_ids


def latent_shot_ids(
    frame_shot_ids: np.ndarray, compression: int = WAN_TEMPORAL_COMPRESSION
) -> np.ndarray:
    """Shot of every latent frame of one ``4k + 1``-frame video encoded as a whole.

    frame_shot_ids: (F,) shot index per video frame -> (F_latent,): the shot of each latent
    frame's first video frame (a latent frame that straddles a cut is given to the earlier shot).
    """
    frame_shot_ids = np.asarray(frame_shot_ids)
    return np.array([frame_shot_ids[group[0]]
                     for group in latent_frame_groups(len(frame_shot_ids), compression)])


@dataclass(frozen=True)
class ShotWindows:
    """What each shot's cross-attention sees.

    token_ranges: per shot, ``[start, stop)`` of its video tokens (shots are contiguous).
    context_indices: per shot, indices of the prompt tokens it reads (global + its own prompt).
    context_length: number of prompt tokens in ``encoder_hidden_states`` (image tokens excluded).
    """

    token_ranges: tuple[tuple[int, int], ...]
    context_indices: tuple[torch.Tensor, ...]
    context_length: int


def build_shot_windows(
    shot_ids: torch.Tensor, tokens_per_frame: int, encoder_shot_ids: torch.Tensor
) -> ShotWindows | None:
    """Window cross-attention layout; ``None`` (plain Wan) when there is a single shot.

    shot_ids: (F_latent,) non-decreasing shot index per latent frame; encoder_shot_ids: (L,) shot
    index of every prompt token, ``-1`` for the global prompt.
    """
    shots = shot_ids.detach().cpu().long()
    if len(shots) and bool((shots[1:] < shots[:-1]).any()):
        raise ValueError("shot_ids must be non-decreasing (shots in order)")
    values, counts = torch.unique_consecutive(shots, return_counts=True)
    if len(values) <= 1:
        return None
    prompt_ids = encoder_shot_ids.detach().long()
    ranges, indices, start = [], [], 0
    for shot, count in zip(values.tolist(), counts.tolist(), strict=True):
        stop = start + count * tokens_per_frame
        ranges.append((start, stop))
        mask = (prompt_ids == GLOBAL_PROMPT_ID) | (prompt_ids == shot)
        indices.append(torch.nonzero(mask).squeeze(1))
        start = stop
    return ShotWindows(tuple(ranges), tuple(indices), len(prompt_ids))


# --------------------------------------------------------------------------------------------
# Attention processor


class ShotWindowCrossAttnProcessor(WanAttnProcessor):
    """Wan cross-attention where shot ``k``'s tokens read the global prompt + shot ``k``'s prompt.

    Queries, their norms and the output projection act token by token, so attending shot by shot
    equals one masked attention, without a (tokens x prompt) mask. Without ``shot_windows`` this
    is :class:`WanAttnProcessor`.
    """

    def __call__(
        self,
        attn: WanAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        shot_windows: ShotWindows | None = None,
    ) -> torch.Tensor:
        if shot_windows is None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask,
                                    rotary_emb)
        # (B, image tokens + prompt tokens, D): Wan puts the CLIP image tokens first
        num_image = encoder_hidden_states.shape[1] - shot_windows.context_length
        image_context = encoder_hidden_states[:, :num_image]
        text_context = encoder_hidden_states[:, num_image:]
        outputs = []
        for (start, stop), index in zip(shot_windows.token_ranges, shot_windows.context_indices,
                                        strict=True):
            if attn.add_k_proj is not None and len(index) != 512:
                # WanAttnProcessor splits image from text assuming 512 text tokens.
                raise ValueError("with an image branch, each shot's prompt window (global + "
                                 f"shot prompt) must be 512 tokens, got {len(index)}")
            context = torch.cat([image_context, text_context[:, index.to(text_context.device)]],
                                dim=1)
            outputs.append(super().__call__(attn, hidden_states[:, start:stop], context,
                                            attention_mask, rotary_emb))
        return torch.cat(outputs, dim=1)


# --------------------------------------------------------------------------------------------
# Block


class CameraWanTransformerBlock(WanTransformerBlock):
    """A Wan block that adds camera features to the normalised hidden states before self-attention
    and runs window cross-attention when given shot windows. Same parameters as Wan's block."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attn2.set_processor(ShotWindowCrossAttnProcessor())

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        camera_emb: torch.Tensor | None = None,
        shot_windows: ShotWindows | None = None,
    ) -> torch.Tensor:
        """camera_emb: (B, F_latent, D), one vector per latent frame, or ``None``."""
        if temb.ndim == 4:
            # (B, tokens, 6, D) (Wan 2.2 TI2V) -> six (B, tokens, D)
            modulation = (self.scale_shift_table.unsqueeze(0) + temb.float()).chunk(6, dim=2)
            modulation = [m.squeeze(2) for m in modulation]
        else:
            # (B, 6, D) -> six (B, 1, D)
            modulation = (self.scale_shift_table + temb.float()).chunk(6, dim=1)
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = modulation

        # 1. Self-attention, camera added to its input: norm1(x) + E(c)
        norm_hidden_states = (self.norm1(hidden_states.float()) * (1 + scale_msa)
                              + shift_msa).type_as(hidden_states)
        if camera_emb is not None:
            # (B, F * H * W, D) -> (B, F, H * W, D) + (B, F, 1, D)
            frames = camera_emb.shape[1]
            norm_hidden_states = (norm_hidden_states.unflatten(1, (frames, -1))
                                  + camera_emb[:, :, None].to(norm_hidden_states.dtype)
                                  ).flatten(1, 2)
        attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + attn_output * gate_msa).type_as(hidden_states)

        # 2. Cross-attention, windowed per shot when there are several shots
        norm_hidden_states = self.norm2(hidden_states.float()).type_as(hidden_states)
        if shot_windows is None:
            attn_output = self.attn2(norm_hidden_states, encoder_hidden_states, None, None)
        else:
            attn_output = self.attn2(norm_hidden_states, encoder_hidden_states, None, None,
                                     shot_windows=shot_windows)
        hidden_states = hidden_states + attn_output

        # 3. Feed-forward
        norm_hidden_states = (self.norm3(hidden_states.float()) * (1 + c_scale_msa)
                              + c_shift_msa).type_as(hidden_states)
        ff_output = self.ffn(norm_hidden_states)
        return (hidden_states.float() + ff_output.float() * c_gate_msa).type_as(hidden_states)


# --------------------------------------------------------------------------------------------
# Model


class CameraDiTModel(WanTransformer3DModel):
    """Wan transformer + camera injection + 4D RoPE + per-shot prompts (ShotVerse controller).

    A ``ModelMixin, ConfigMixin, PeftAdapterMixin`` through :class:`WanTransformer3DModel`. The
    Wan arguments are diffusers'; the added ones:

    Args:
        camera_dim: pose features per latent frame (48 = 4 frames x 3x4 c2w); ``0`` for none.
        rope_axes_dim: ``(shot, frame, height, width)`` channels per head; ``None`` is Wan's split
            with no shot subspace.
        rope_max_shots: the most shots a video may have.
        plucker_in_channels: packed Plücker channels of the VideoX-Fun style adapter (24), or
            ``None`` for no adapter.
        plucker_downscale_factor: the adapter's pixel-unshuffle factor (VAE spatial stride).
    """

    _no_split_modules: ClassVar[list[str]] = ["CameraWanTransformerBlock"]
    _repeated_blocks: ClassVar[list[str]] = ["CameraWanTransformerBlock"]
    _skip_layerwise_casting_patterns: ClassVar[list[str]] = [
        *WanTransformer3DModel._skip_layerwise_casting_patterns, "camera_encoder",
        "plucker_adapter"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        camera_dim: int = CAMERA_DIM,
        rope_axes_dim: tuple[int, int, int, int] | None = None,
        rope_max_shots: int = 16,
        plucker_in_channels: int | None = None,
        plucker_downscale_factor: int = 8,
    ) -> None:
        super().__init__(
            patch_size=patch_size, num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim, in_channels=in_channels,
            out_channels=out_channels, text_dim=text_dim, freq_dim=freq_dim, ffn_dim=ffn_dim,
            num_layers=num_layers, cross_attn_norm=cross_attn_norm, qk_norm=qk_norm, eps=eps,
            image_dim=image_dim, added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len, pos_embed_seq_len=pos_embed_seq_len,
        )
        inner_dim = num_attention_heads * attention_head_dim
        self.rope = ShotRotaryPosEmbed(attention_head_dim, patch_size, rope_max_seq_len,
                                       axes_dim=rope_axes_dim, max_shots=rope_max_shots)
        # Same arguments and parameter names as Wan's blocks, so Wan weights load unchanged.
        self.blocks = nn.ModuleList([
            CameraWanTransformerBlock(inner_dim, ffn_dim, num_attention_heads, qk_norm,
                                      cross_attn_norm, eps, added_kv_proj_dim)
            for _ in range(num_layers)
        ])
        self.camera_encoder = None
        if camera_dim:
            # per block: (B, F_latent, 48) -> (B, F_latent, D), zero so that it starts as Wan
            self.camera_encoder = nn.ModuleList(
                [nn.Linear(camera_dim, inner_dim) for _ in range(num_layers)])
            for layer in self.camera_encoder:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.plucker_adapter = None
        if plucker_in_channels:
            self.plucker_adapter = PluckerCameraAdapter(
                plucker_in_channels, inner_dim, tuple(patch_size[1:]),
                downscale_factor=plucker_downscale_factor)

    # ---- building, saving and loading ----------------------------------------------------

    @classmethod
    def from_wan(cls, transformer: WanTransformer3DModel, **camera_config: Any) -> CameraDiTModel:
        """A camera model holding a copy of ``transformer``'s weights (dtype per tensor kept).

        camera_config: the added arguments (``camera_dim``, ``rope_axes_dim``, ...).
        """
        config = {key: transformer.config[key] for key in WAN_CONFIG_KEYS
                  if key in transformer.config}
        model = cls(**config, **camera_config)
        state = {key: value.detach().clone() for key, value in transformer.state_dict().items()}
        # assign=True keeps each tensor's dtype (Wan keeps norms and time embedding in float32)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        missing = [key for key in missing if not key.startswith(CAMERA_PREFIXES)]
        if missing or unexpected:
            raise ValueError(f"Wan weights do not match: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        device, dtype = transformer.device, transformer.dtype
        for module in (model.camera_encoder, model.plucker_adapter):
            if module is not None:
                module.to(device=device, dtype=dtype)
        model.rope.to(device)
        return model.train(transformer.training)

    def camera_state_dict(self) -> dict[str, torch.Tensor]:
        """The added (non-Wan) weights: ``camera_encoder.*`` and ``plucker_adapter.*``."""
        return {key: value for key, value in self.state_dict().items()
                if key.startswith(CAMERA_PREFIXES)}

    def save_camera_pretrained(self, save_directory: str | os.PathLike,
                               adapter_name: str = "default") -> None:
        """Save config, camera weights and (if present) the LoRA as safetensors.

        The folder holds only what the base Wan model lacks; keep it next to the base model's
        folder and load both with :meth:`from_camera_pretrained`.
        """
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.save_config(directory)
        weights = {key: value.detach().cpu().contiguous()
                   for key, value in self.camera_state_dict().items()}
        safetensors.torch.save_file(weights, directory / CAMERA_WEIGHTS_NAME,
                                    metadata={"format": "pt"})
        if adapter_name in (getattr(self, "peft_config", None) or {}):
            self.save_lora_adapter(directory, adapter_name, weight_name=LORA_WEIGHTS_NAME)

    @classmethod
    def from_camera_pretrained(
        cls,
        camera_directory: str | os.PathLike,
        base: WanTransformer3DModel | str | os.PathLike,
        adapter_name: str = "default",
        **base_kwargs: Any,
    ) -> CameraDiTModel:
        """Base Wan weights (a model or its folder, loaded with ``base_kwargs``) + camera folder."""
        if not isinstance(base, WanTransformer3DModel):
            base = WanTransformer3DModel.from_pretrained(base, **base_kwargs)
        directory = Path(camera_directory)
        config = cls.load_config(directory)
        mismatched = [key for key in WAN_CONFIG_KEYS
                      if key in config and key in base.config
                      and _as_plain(config[key]) != _as_plain(base.config[key])]
        if mismatched:
            raise ValueError(f"camera weights in {directory} were saved for a different base "
                             f"model (config differs in {mismatched})")
        camera_config = {key: config[key] for key in config
                         if key not in WAN_CONFIG_KEYS and not key.startswith("_")}
        model = cls.from_wan(base, **camera_config)
        weights = safetensors.torch.load_file(directory / CAMERA_WEIGHTS_NAME,
                                              device=str(model.device))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        missing = [key for key in missing if key.startswith(CAMERA_PREFIXES)]
        if missing or unexpected:
            raise ValueError(f"{CAMERA_WEIGHTS_NAME}: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        if (directory / LORA_WEIGHTS_NAME).exists():
            model.load_lora_adapter(str(directory), weight_name=LORA_WEIGHTS_NAME, prefix=None,
                                    adapter_name=adapter_name)
        return model

    # ---- forward ----------------------------------------------------------------------------

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.LongTensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        camera_features: torch.Tensor | None = None,
        plucker_embeddings: torch.Tensor | None = None,
        shot_ids: torch.Tensor | None = None,
        encoder_shot_ids: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor | Transformer2DModelOutput:
        """Predict the flow (as Wan does) under camera and shot conditioning.

        Args:
            hidden_states: (B, C, F, H, W) latents.
            timestep: (B,) or (B, tokens) timesteps.
            encoder_hidden_states: (B, L, text_dim) prompt embeddings: the global prompt and, for
                several shots, every shot's prompt, concatenated along L.
            encoder_hidden_states_image: (B, 257, image_dim) CLIP image tokens (I2V) or ``None``.
            camera_features: (B, F, 48) per-latent-frame pose features
                (:func:`camera_features_from_poses`) or ``None``.
            plucker_embeddings: (B, 24, F, 8H, 8W) packed Plücker rays
                (:func:`~backend.models.plucker_adapter.pack_plucker_frames`) or ``None``.
            shot_ids: (F,) shot index per latent frame, non-decreasing; ``None`` for one shot.
            encoder_shot_ids: (L,) shot index per prompt token, ``-1`` for the global prompt;
                needed when ``shot_ids`` has several shots.
            return_dict: return a :class:`Transformer2DModelOutput` rather than a tuple.
            attention_kwargs: ``{"scale": lora_scale}``.
        """
        batch_size, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        post_f, post_h, post_w = num_frames // p_t, height // p_h, width // p_w

        # 1. Positions, shot windows, camera features
        rotary_emb = self.rope(hidden_states, shot_ids)
        shot_windows = None
        if shot_ids is not None:
            if encoder_shot_ids is None and len(torch.unique(torch.as_tensor(shot_ids))) > 1:
                raise ValueError("encoder_shot_ids is required with several shots")
            if encoder_shot_ids is not None:
                if len(encoder_shot_ids) != encoder_hidden_states.shape[1]:
                    raise ValueError(f"encoder_shot_ids has {len(encoder_shot_ids)} entries but "
                                     f"encoder_hidden_states has {encoder_hidden_states.shape[1]} "
                                     "tokens")
                shot_windows = build_shot_windows(torch.as_tensor(shot_ids), post_h * post_w,
                                                  encoder_shot_ids)
        if camera_features is not None:
            if self.camera_encoder is None:
                raise ValueError("camera_features given but the model has no camera_encoder")
            if camera_features.shape[:2] != (batch_size, post_f):
                raise ValueError(f"camera_features must be ({batch_size}, {post_f}, "
                                 f"{self.config.camera_dim}), got {tuple(camera_features.shape)}")
            camera_features = camera_features.to(self.camera_encoder[0].weight.dtype)

        # 2. Patch embedding (+ Plücker adapter), (B, C, F, H, W) -> (B, tokens, D)
        hidden_states = self.patch_embedding(hidden_states)
        if plucker_embeddings is not None:
            if self.plucker_adapter is None:
                raise ValueError("plucker_embeddings given but the model has no plucker_adapter")
            rays = plucker_embeddings.to(hidden_states.dtype)
            hidden_states = hidden_states + self.plucker_adapter(rays)
        hidden_states = hidden_states.flatten(2).transpose(1, 2).contiguous()

        # 3. Time and text conditioning, as in Wan
        if timestep.ndim == 2:
            ts_seq_len = timestep.shape[1]
            timestep = timestep.flatten()
        else:
            ts_seq_len = None
        temb, timestep_proj, encoder_hidden_states, encoder_hidden_states_image = (
            self.condition_embedder(timestep, encoder_hidden_states, encoder_hidden_states_image,
                                    timestep_seq_len=ts_seq_len))
        if ts_seq_len is not None:
            timestep_proj = timestep_proj.unflatten(2, (6, -1))  # (B, tokens, 6, D)
        else:
            timestep_proj = timestep_proj.unflatten(1, (6, -1))  # (B, 6, D)
        if encoder_hidden_states_image is not None:
            encoder_hidden_states = torch.cat([encoder_hidden_states_image,
                                               encoder_hidden_states], dim=1)

        # 4. Transformer blocks
        for index, block in enumerate(self.blocks):
            camera_emb = None
            if camera_features is not None:
                camera_emb = self.camera_encoder[index](camera_features)  # (B, F, D)
            args = (hidden_states, encoder_hidden_states, timestep_proj, rotary_emb, camera_emb,
                    shot_windows)
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(block, *args)
            else:
                hidden_states = block(*args)

        # 5. Output norm, projection and unpatchify, as in Wan
        if temb.ndim == 3:
            shift, scale = (self.scale_shift_table.unsqueeze(0).to(temb.device)
                            + temb.unsqueeze(2)).chunk(2, dim=2)
            shift, scale = shift.squeeze(2), scale.squeeze(2)
        else:
            shift, scale = (self.scale_shift_table.to(temb.device)
                            + temb.unsqueeze(1)).chunk(2, dim=1)
        shift, scale = shift.to(hidden_states.device), scale.to(hidden_states.device)
        hidden_states = (self.norm_out(hidden_states.float()) * (1 + scale)
                         + shift).type_as(hidden_states)
        hidden_states = self.proj_out(hidden_states)
        hidden_states = hidden_states.reshape(batch_size, post_f, post_h, post_w, p_t, p_h, p_w,
                                              -1)
        hidden_states = hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6)
        output = hidden_states.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


def _as_plain(value: Any) -> Any:
    """Config values compare equal whether read as tuples (in memory) or lists (from JSON)."""
    return list(value) if isinstance(value, tuple | list) else value
