"""The motion ControlNet: zero-initialised residuals, named LoRAs, the orthogonal loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backend.models.trajectory_controlnet import (
    CAMERA_ADAPTER,
    OBJECT_ADAPTER,
    TrajectoryControlNetModel,
    activate_adapters,
    adapters_disabled,
    load_motion_lora,
    lora_down_weights,
    save_motion_lora,
)
from backend.pipelines.trajectory_controlnet import build_tiny_pipeline
from backend.training.losses import orthogonal_loss

FRAMES, SIZE = 4, 16


@pytest.fixture(scope="module")
def pipeline():
    return build_tiny_pipeline(seed=0)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(1, 4, FRAMES, SIZE // 2, SIZE // 2, generator=g)
    embeds = torch.randn(FRAMES, 16, 32, generator=g)
    flows = torch.randn(1, 2, FRAMES, SIZE, SIZE, generator=g)
    return sample, embeds, flows


@torch.no_grad()
def _residuals(controlnet, seed: int = 0) -> list[torch.Tensor]:
    sample, embeds, flows = _inputs(seed)
    down, mid = controlnet(sample, 10, encoder_hidden_states=embeds, controlnet_cond=flows,
                           return_dict=False)
    return [*down, mid]


def test_from_unet_is_zero_initialised_and_matches_the_unet(pipeline) -> None:
    unet = pipeline.unet
    controlnet = TrajectoryControlNetModel.from_unet(
        unet, conditioning_embedding_out_channels=(8, 16)).eval()
    assert controlnet.config.conditioning_channels == 2
    assert not controlnet.config.concat_conditioning_mask
    # Spatial and motion weights come from the UNet's encoder.
    assert torch.equal(controlnet.down_blocks[0].motion_modules[0].proj_in.weight,
                       unet.down_blocks[0].motion_modules[0].proj_in.weight)
    residuals = _residuals(controlnet)
    assert all(torch.count_nonzero(r) == 0 for r in residuals)
    sample, embeds, _ = _inputs()
    with torch.no_grad():
        plain = unet(sample, 10, encoder_hidden_states=embeds).sample
        added = unet(sample, 10, encoder_hidden_states=embeds,
                     down_block_additional_residuals=residuals[:-1],
                     mid_block_additional_residual=residuals[-1]).sample
    assert torch.equal(plain, added)  # adding it changes nothing until it is trained


def test_named_adapters_switch_and_weigh(pipeline) -> None:
    controlnet = pipeline.controlnet
    assert set(controlnet.peft_config) == {CAMERA_ADAPTER, OBJECT_ADAPTER}
    with adapters_disabled(controlnet):
        base = _residuals(controlnet)
    outputs = {}
    for names, weights in (([CAMERA_ADAPTER], [1.0]), ([OBJECT_ADAPTER], [1.0]),
                           ([OBJECT_ADAPTER], [0.0]), ([CAMERA_ADAPTER, OBJECT_ADAPTER], [1, 1])):
        activate_adapters(controlnet, names, weights)
        outputs[(*names, *weights)] = _residuals(controlnet)
    for key, value in outputs.items():
        same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(value, base, strict=True))
        assert same == (key == (OBJECT_ADAPTER, 0.0)), key
    camera = outputs[(CAMERA_ADAPTER, 1.0)]
    assert not torch.allclose(camera[-1], outputs[(OBJECT_ADAPTER, 1.0)][-1])
    with adapters_disabled(controlnet):
        assert torch.equal(_residuals(controlnet)[-1], base[-1])


def test_lora_round_trip(pipeline, tmp_path: Path) -> None:
    controlnet = pipeline.controlnet
    path = tmp_path / "object_lora.safetensors"
    save_motion_lora(controlnet, OBJECT_ADAPTER, path)
    activate_adapters(controlnet, [OBJECT_ADAPTER], [1.0])
    expected = _residuals(controlnet)
    fresh = TrajectoryControlNetModel.from_unet(pipeline.unet,
                                                conditioning_embedding_out_channels=(8, 16))
    # Base weights equal: peft renames them base_layer, so copy by matching suffix.
    base = {k.replace(".base_layer", ""): v for k, v in controlnet.state_dict().items()
            if "lora_" not in k}
    fresh.load_state_dict(base)
    load_motion_lora(fresh, OBJECT_ADAPTER, path)
    fresh.eval()
    activate_adapters(fresh, [OBJECT_ADAPTER], [1.0])
    assert all(torch.allclose(a, b, atol=1e-6)
               for a, b in zip(_residuals(fresh), expected, strict=True))
    assert len(lora_down_weights(fresh, OBJECT_ADAPTER)) == len(
        lora_down_weights(controlnet, CAMERA_ADAPTER)) > 0


def test_orthogonal_loss_zero_for_orthogonal_adapters() -> None:
    basis = torch.linalg.qr(torch.randn(16, 16))[0]  # orthonormal columns
    camera = [basis[:, :4].T, basis[:, 8:12].T]  # (r, in)
    orthogonal = [basis[:, 4:8].T, basis[:, 12:16].T]
    assert orthogonal_loss(camera, orthogonal).item() == pytest.approx(0.0, abs=1e-10)
    overlapping = [basis[:, 2:6].T, torch.randn(4, 16)]
    assert orthogonal_loss(camera, overlapping).item() > 0.1
    # The printed form: || I - W_cam W_obj^T ||^2 costs r = 4 for orthogonal adapters.
    literal = orthogonal_loss(camera, orthogonal, subtract_identity=True)
    assert literal.item() == pytest.approx(4.0, abs=1e-5)
    with pytest.raises(ValueError, match="camera_weights"):
        orthogonal_loss(camera, orthogonal[:1])


def test_orthogonal_loss_has_gradients() -> None:
    camera = [torch.randn(4, 8)]
    obj = [torch.randn(4, 8, requires_grad=True)]
    loss = orthogonal_loss(camera, obj)
    loss.backward()
    assert obj[0].grad is not None and obj[0].grad.abs().sum() > 0
