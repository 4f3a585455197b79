"""CameraDiTModel on tiny configs: equivalence with Wan, gradients, windows, Plücker, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanAttnProcessor,
    WanTransformer3DModel,
)
from peft import LoraConfig

from backend.camera.se3 import make_pose
from backend.models.camera_dit import (
    CAMERA_WEIGHTS_NAME,
    LORA_WEIGHTS_NAME,
    CameraDiTModel,
    ShotWindowCrossAttnProcessor,
    build_shot_windows,
    camera_features_from_poses,
    camera_features_from_shots,
    latent_shot_ids,
)
from backend.models.plucker_adapter import (
    PluckerCameraAdapter,
    convert_videox_fun_state_dict,
    pack_plucker_frames,
)

TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4,
            out_channels=4, text_dim=16, freq_dim=8, ffn_dim=32, num_layers=2,
            rope_max_seq_len=32)


def tiny_wan(seed: int = 0) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    return WanTransformer3DModel(**TINY).eval()


def inputs(frames: int = 3, prompt_tokens: int = 6, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "hidden_states": torch.randn(1, 4, frames, 4, 6, generator=generator),
        "timestep": torch.tensor([500]),
        "encoder_hidden_states": torch.randn(1, prompt_tokens, 16, generator=generator),
    }


def random_poses(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(count, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    rotation = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)
    return make_pose(rotation, rng.normal(size=(count, 3)))


def test_camera_features_from_poses():
    c2w = random_poses(9)
    features = camera_features_from_poses(c2w)
    assert features.shape == (3, 48) and features.dtype == np.float32
    flat = c2w[:, :3, :].reshape(9, 12)
    np.testing.assert_allclose(features[0], np.tile(flat[0], 4), rtol=1e-6)
    np.testing.assert_allclose(features[2], flat[5:9].reshape(-1), rtol=1e-6)
    with pytest.raises(ValueError, match="4k"):
        camera_features_from_poses(c2w[:8])


def test_camera_features_from_shots_and_shot_ids():
    shots = [random_poses(5, seed=1), random_poses(9, seed=2)]
    features, shot_ids = camera_features_from_shots(shots)
    assert features.shape == (5, 48)
    assert shot_ids.tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_allclose(features[0, :12], np.eye(4)[:3].reshape(-1), atol=1e-12)
    frame_shots = np.array([0] * 6 + [1] * 7)
    assert latent_shot_ids(frame_shots).tolist() == [0, 0, 0, 1]  # [5..8] starts in shot 0


def test_equivalent_to_wan_with_zero_camera():
    base = tiny_wan()
    model = CameraDiTModel.from_wan(base)
    batch = inputs()
    with torch.no_grad():
        expected = base(**batch).sample
        plain = model(**batch).sample
        camera = torch.randn(1, 3, 48)
        with_camera = model(**batch, camera_features=camera, shot_ids=torch.zeros(3)).sample
    assert (plain - expected).abs().max() <= 1e-5
    assert (with_camera - expected).abs().max() <= 1e-5


def test_window_cross_attention_with_global_prompt_only_is_wan():
    # two shots whose prompts are all global: every window is the whole prompt
    base = tiny_wan()
    model = CameraDiTModel.from_wan(base)
    batch = inputs(frames=4)
    with torch.no_grad():
        expected = base(**batch).sample
        windowed = model(**batch, shot_ids=torch.tensor([0, 0, 1, 1]),
                         encoder_shot_ids=torch.full((6,), -1)).sample
    assert (windowed - expected).abs().max() <= 1e-5


def test_window_processor_equals_masked_attention():
    torch.manual_seed(0)
    attn = WanAttention(dim=32, heads=2, dim_head=16, cross_attention_dim_head=16,
                        processor=WanAttnProcessor())
    hidden = torch.randn(1, 3 * 4, 32)  # 3 latent frames of 4 tokens
    context = torch.randn(1, 7, 32)
    shot_ids = torch.tensor([0, 1, 1])
    prompt_ids = torch.tensor([-1, -1, 0, 0, 1, 1, 1])
    windows = build_shot_windows(shot_ids, 4, prompt_ids)
    token_shot = shot_ids.repeat_interleave(4)
    mask = (prompt_ids[None] == -1) | (prompt_ids[None] == token_shot[:, None])  # (12, 7)
    with torch.no_grad():
        expected = attn(hidden, context, mask[None, None])
        attn.set_processor(ShotWindowCrossAttnProcessor())
        windowed = attn(hidden, context, None, None, shot_windows=windows)
        plain = attn(hidden, context)
    assert torch.allclose(windowed, expected, atol=1e-6)
    assert not torch.allclose(plain, expected, atol=1e-4)
    assert build_shot_windows(torch.zeros(3), 4, prompt_ids) is None
    with pytest.raises(ValueError, match="non-decreasing"):
        build_shot_windows(torch.tensor([1, 0, 1]), 4, prompt_ids)


def test_gradient_reaches_camera_projections():
    model = CameraDiTModel.from_wan(tiny_wan()).train()
    batch = inputs()
    camera = torch.randn(1, 3, 48)
    out = model(**batch, camera_features=camera).sample
    out.square().mean().backward()
    for layer in model.camera_encoder:
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
        assert layer.bias.grad.abs().sum() > 0
    # once trained (non-zero), the camera changes the output
    with torch.no_grad():
        for layer in model.camera_encoder:
            layer.weight.normal_(std=0.1)
        moved = model(**batch, camera_features=camera).sample
        still = model(**batch).sample
    assert (moved - still).abs().max() > 1e-4


def test_four_d_rope_shot_subspace_changes_only_multi_shot():
    base = tiny_wan()
    model = CameraDiTModel.from_wan(base, rope_axes_dim=(4, 4, 4, 4))
    batch = inputs(frames=2)
    with torch.no_grad():
        one = model(**batch, shot_ids=torch.tensor([0, 0])).sample
        two = model(**batch, shot_ids=torch.tensor([0, 1]),
                    encoder_shot_ids=torch.full((6,), -1)).sample
    assert one.shape == two.shape == batch["hidden_states"].shape
    assert (one - two).abs().max() > 1e-5


def test_pack_plucker_frames_matches_videox_fun_layout():
    rays = torch.randn(2, 9, 6, 16, 24)
    packed = pack_plucker_frames(rays)
    # VideoX-Fun pipeline_wan_fun_control.py: (b, c, f, h, w) video, frame 0 repeated 4 times
    video = rays.permute(0, 2, 1, 3, 4)
    ref = torch.cat([video[:, :, :1].repeat_interleave(4, dim=2), video[:, :, 1:]], dim=2)
    ref = ref.transpose(1, 2)
    b, f, c, h, w = ref.shape
    ref = ref.contiguous().view(b, f // 4, 4, c, h, w).transpose(2, 3)
    ref = ref.contiguous().view(b, f // 4, c * 4, h, w).transpose(1, 2)
    assert torch.equal(packed, ref)
    assert packed.shape == (2, 24, 3, 16, 24)


def test_plucker_adapter_path():
    base = tiny_wan()
    model = CameraDiTModel.from_wan(base, plucker_in_channels=24, plucker_downscale_factor=2)
    batch = inputs()
    rays = pack_plucker_frames(torch.randn(1, 9, 6, 8, 12))  # pixel = 2 x latent
    with torch.no_grad():
        expected = base(**batch).sample
        zero = model(**batch, plucker_embeddings=rays).sample
        for parameter in model.plucker_adapter.parameters():
            parameter.normal_(std=0.1)
        moved = model(**batch, plucker_embeddings=rays).sample
    assert (zero - expected).abs().max() <= 1e-5
    assert (moved - expected).abs().max() > 1e-4


def test_convert_videox_fun_keys():
    adapter = PluckerCameraAdapter(24, 32, (2, 2))
    state = {f"control_adapter.{k}": v for k, v in adapter.state_dict().items()}
    state["blocks.0.self_attn.q.weight"] = torch.zeros(1)
    state["blocks.0.norm3.weight"] = torch.zeros(1)
    state["head.head.weight"] = torch.zeros(1)
    converted = convert_videox_fun_state_dict(state)
    assert "plucker_adapter.conv.weight" in converted
    assert "plucker_adapter.residual_blocks.0.conv2.bias" in converted
    assert {"blocks.0.attn1.to_q.weight", "blocks.0.norm2.weight", "proj_out.weight"} <= set(
        converted)


def test_camera_parts_and_lora_round_trip(tmp_path):
    base = tiny_wan()
    model = CameraDiTModel.from_wan(base, rope_axes_dim=(4, 4, 4, 4))
    with torch.no_grad():
        for layer in model.camera_encoder:
            layer.weight.normal_(std=0.1)
    model.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_v"],
                                 init_lora_weights=False))
    base.save_pretrained(tmp_path / "wan")
    model.save_camera_pretrained(tmp_path / "wan-camera")
    saved = sorted(p.name for p in (tmp_path / "wan-camera").iterdir())
    assert saved == sorted(["config.json", CAMERA_WEIGHTS_NAME, LORA_WEIGHTS_NAME])

    loaded = CameraDiTModel.from_camera_pretrained(tmp_path / "wan-camera", tmp_path / "wan")
    batch = inputs(frames=2)
    camera = torch.randn(1, 2, 48)
    with torch.no_grad():
        expected = model(**batch, camera_features=camera, shot_ids=torch.tensor([0, 1]),
                         encoder_shot_ids=torch.tensor([-1, -1, 0, 0, 1, 1])).sample
        got = loaded(**batch, camera_features=camera, shot_ids=torch.tensor([0, 1]),
                     encoder_shot_ids=torch.tensor([-1, -1, 0, 0, 1, 1])).sample
    assert loaded.config.rope_axes_dim == [4, 4, 4, 4] or loaded.config.rope_axes_dim == (4, 4,
                                                                                           4, 4)
    assert torch.allclose(got, expected, atol=1e-6)


def test_full_save_pretrained_round_trip(tmp_path):
    model = CameraDiTModel.from_wan(tiny_wan(), plucker_in_channels=24)
    model.save_pretrained(tmp_path / "full")
    loaded = CameraDiTModel.from_pretrained(tmp_path / "full")
    assert loaded.plucker_adapter is not None
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_camera_weights_for_another_base_are_refused(tmp_path):
    model = CameraDiTModel.from_wan(tiny_wan())
    model.save_camera_pretrained(tmp_path / "camera")
    other = WanTransformer3DModel(**{**TINY, "num_layers": 3})
    with pytest.raises(ValueError, match="different base"):
        CameraDiTModel.from_camera_pretrained(tmp_path / "camera", other)
