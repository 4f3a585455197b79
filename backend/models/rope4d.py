"""4D rotary position embedding for multi-shot video (ShotVerse §3.3.2).

Wan's 3D RoPE splits each attention head into (frame, height, width) subspaces. Multi-shot video
has one more level (video -> shot -> frame), so the head is split into four subspaces
``(shot, frame, height, width)``. Every latent frame is mapped to ``(shot index, global frame
index)``: all frames of a shot share the shot rotation (consistency inside a shot) while the frame
rotation keeps counting across cuts (order of the whole video).

With the shot subspace empty (``axes_dim[0] == 0``, the default) the rotation is exactly Wan's
(:class:`diffusers.models.transformers.transformer_wan.WanRotaryPosEmbed`), so Wan weights start
from the positions they were trained with.

The frequency tables are computed once at construction; the per-token table of a given
(shape, shot layout) is assembled once and cached, not rebuilt every denoising step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from torch import nn

AXES = ("shot", "frame", "height", "width")
MAX_CACHED_LAYOUTS = 8


def wan_rope_axes_dim(attention_head_dim: int) -> tuple[int, int, int, int]:
    """Wan's (frame, height, width) split with an empty shot subspace: ``(0, t, h, w)``."""
    h_dim = w_dim = 2 * (attention_head_dim // 6)
    return 0, attention_head_dim - h_dim - w_dim, h_dim, w_dim


def check_rope_axes_dim(
    attention_head_dim: int, axes_dim: Sequence[int] | None
) -> tuple[int, int, int, int]:
    """Validate a ``(shot, frame, height, width)`` allocation; ``None`` means Wan's split."""
    if axes_dim is None:
        return wan_rope_axes_dim(attention_head_dim)
    axes = tuple(int(d) for d in axes_dim)
    if len(axes) != 4:
        raise ValueError(f"rope_axes_dim must hold 4 sizes {AXES}, got {axes_dim}")
    if any(d < 0 or d % 2 for d in axes):
        raise ValueError(f"rope_axes_dim sizes must be even and non-negative, got {axes}")
    if sum(axes) != attention_head_dim:
        raise ValueError(f"rope_axes_dim {axes} must sum to attention_head_dim "
                         f"{attention_head_dim}")
    return axes  # type: ignore[return-value]


class ShotRotaryPosEmbed(nn.Module):
    """RoPE over ``(shot, frame, height, width)``; a drop-in for Wan's ``rope`` module.

    Args:
        attention_head_dim: channels per head.
        patch_size: ``(p_t, p_h, p_w)`` of the patch embedding.
        max_seq_len: the longest frame / height / width axis (in patches).
        theta: RoPE base.
        axes_dim: ``(shot, frame, height, width)`` channels per head, even, summing to the head
            dim; ``None`` gives Wan's split with no shot subspace.
        max_shots: the most shots a video may have.
    """

    def __init__(
        self,
        attention_head_dim: int,
        patch_size: tuple[int, int, int],
        max_seq_len: int,
        theta: float = 10000.0,
        axes_dim: Sequence[int] | None = None,
        max_shots: int = 16,
    ):
        super().__init__()
        self.attention_head_dim = attention_head_dim
        self.patch_size = tuple(patch_size)
        self.max_seq_len = max_seq_len
        self.max_shots = max_shots
        self.axes_dim = check_rope_axes_dim(attention_head_dim, axes_dim)
        lengths = (max_shots, max_seq_len, max_seq_len, max_seq_len)
        freqs_dtype = torch.float32 if torch.backends.mps.is_available() else torch.float64
        for axis, dim, length in zip(AXES, self.axes_dim, lengths, strict=True):
            # (length, dim) each, the same formula and dtype as Wan's rope
            cos, sin = get_1d_rotary_pos_embed(dim, length, theta, use_real=True,
                                               repeat_interleave_real=True,
                                               freqs_dtype=freqs_dtype)
            self.register_buffer(f"{axis}_cos", cos, persistent=False)
            self.register_buffer(f"{axis}_sin", sin, persistent=False)
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _apply(self, fn, recurse=True):
        # Moving the module (device/dtype) invalidates the assembled tables.
        self._cache = {}
        return super()._apply(fn, recurse)

    def _axis(self, axis: str, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"{axis}_cos")[positions], getattr(self, f"{axis}_sin")[positions]

    def _assemble(
        self, shot_ids: tuple[int, ...], ppf: int, pph: int, ppw: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.frame_cos.device
        shot = torch.tensor(shot_ids, device=device, dtype=torch.long)
        grid = (ppf, pph, ppw)
        views = {"shot": (ppf, 1, 1), "frame": (ppf, 1, 1), "height": (1, pph, 1),
                 "width": (1, 1, ppw)}
        positions = {"shot": shot, "frame": torch.arange(ppf, device=device),
                     "height": torch.arange(pph, device=device),
                     "width": torch.arange(ppw, device=device)}
        cos_parts, sin_parts = [], []
        for axis in AXES:
            cos, sin = self._axis(axis, positions[axis])  # (n, dim)
            cos_parts.append(cos.view(*views[axis], -1).expand(*grid, -1))
            sin_parts.append(sin.view(*views[axis], -1).expand(*grid, -1))
        # (ppf, pph, ppw, head_dim) -> (1, tokens, 1, head_dim), Wan's layout
        cos = torch.cat(cos_parts, dim=-1).reshape(1, ppf * pph * ppw, 1, -1)
        sin = torch.cat(sin_parts, dim=-1).reshape(1, ppf * pph * ppw, 1, -1)
        return cos, sin

    def forward(
        self, hidden_states: torch.Tensor, shot_ids: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotation tables for latents ``hidden_states`` (B, C, F, H, W).

        shot_ids: (F // p_t,) shot index of every latent frame (shared by the batch); ``None``
        means one shot. Returns ``(cos, sin)``, each (1, tokens, 1, head_dim), float32.
        """
        _, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.patch_size
        ppf, pph, ppw = num_frames // p_t, height // p_h, width // p_w
        if shot_ids is None:
            ids = (0,) * ppf
        else:
            values = shot_ids.tolist() if isinstance(shot_ids, torch.Tensor) else shot_ids
            ids = tuple(int(s) for s in values)
        if len(ids) != ppf:
            raise ValueError(f"shot_ids has {len(ids)} entries but the latents have {ppf} frames")
        if ids and (min(ids) < 0 or max(ids) >= self.max_shots):
            raise ValueError(f"shot_ids must lie in [0, {self.max_shots}), got {sorted(set(ids))}")
        if max(ppf, pph, ppw) > self.max_seq_len:
            raise ValueError(f"latent grid {(ppf, pph, ppw)} exceeds rope max_seq_len "
                             f"{self.max_seq_len}")
        key = (ids, ppf, pph, ppw)
        if key not in self._cache:
            if len(self._cache) >= MAX_CACHED_LAYOUTS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._assemble(ids, ppf, pph, ppw)
        return self._cache[key]
