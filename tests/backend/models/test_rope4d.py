"""4D RoPE: exact reduction to Wan's 3D RoPE, shot/frame assembly, caching."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from backend.models.rope4d import ShotRotaryPosEmbed, wan_rope_axes_dim


@pytest.mark.parametrize("head_dim", [16, 24, 128])
@pytest.mark.parametrize("shape", [(1, 4, 3, 4, 6), (2, 4, 5, 8, 2)])
def test_empty_shot_subspace_is_wan_rope(head_dim, shape):
    wan = WanRotaryPosEmbed(head_dim, (1, 2, 2), max_seq_len=32)
    rope = ShotRotaryPosEmbed(head_dim, (1, 2, 2), max_seq_len=32)
    latents = torch.zeros(shape)
    frames = shape[2]
    # shot ids change nothing when the shot subspace is empty
    for shot_ids in (None, [0] * frames, [0] * (frames - 1) + [1]):
        cos, sin = rope(latents, shot_ids)
        wan_cos, wan_sin = wan(latents)
        assert cos.shape == wan_cos.shape
        assert torch.equal(cos, wan_cos) and torch.equal(sin, wan_sin)


def test_shot_and_frame_subspaces():
    rope = ShotRotaryPosEmbed(32, (1, 2, 2), max_seq_len=16, axes_dim=(4, 8, 10, 10))
    latents = torch.zeros(1, 4, 4, 4, 4)
    cos, sin = rope(latents, [0, 0, 1, 1])
    cos = cos.view(4, 2, 2, 32)  # (frames, h, w, head_dim)
    shot, frame = cos[..., :4], cos[..., 4:12]
    # frames of one shot share the shot rotation; the two shots differ
    assert torch.equal(shot[0], shot[1]) and torch.equal(shot[2], shot[3])
    assert not torch.equal(shot[1], shot[2])
    assert torch.equal(shot[0], torch.ones_like(shot[0]))  # shot 0 is position 0
    # the frame rotation keeps counting across the cut (global frame index)
    assert torch.equal(frame[2, 0, 0], rope.frame_cos[2])
    assert sin.shape == (1, 16, 1, 32)


def test_tables_are_cached_per_shape():
    rope = ShotRotaryPosEmbed(16, (1, 2, 2), max_seq_len=16, axes_dim=(2, 6, 4, 4))
    latents = torch.zeros(1, 4, 3, 4, 4)
    first = rope(latents, [0, 1, 1])
    assert rope(latents, torch.tensor([0, 1, 1]))[0] is first[0]
    assert rope(latents, [0, 0, 1])[0] is not first[0]


def test_bad_arguments():
    assert wan_rope_axes_dim(128) == (0, 44, 42, 42)
    with pytest.raises(ValueError, match="sum"):
        ShotRotaryPosEmbed(16, (1, 2, 2), 16, axes_dim=(2, 2, 2, 2))
    with pytest.raises(ValueError, match="even"):
        ShotRotaryPosEmbed(16, (1, 2, 2), 16, axes_dim=(1, 5, 6, 4))
    rope = ShotRotaryPosEmbed(16, (1, 2, 2), 16, max_shots=2)
    with pytest.raises(ValueError, match="entries"):
        rope(torch.zeros(1, 4, 3, 4, 4), [0, 1])
    with pytest.raises(ValueError, match="shot_ids"):
        rope(torch.zeros(1, 4, 3, 4, 4), [0, 1, 2])
