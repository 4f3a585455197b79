"""Image Conductor's motion ControlNet: a SparseCtrl-style ControlNet over trajectory flow maps.

The motion ControlNet reads stacked flow maps ``c_trajs: (B, 2, F, H, W)`` at pixel resolution
(Image Conductor §2.3) and returns residuals for the down blocks and the mid block of an
AnimateDiff :class:`~diffusers.UNetMotionModel`, which are summed with those of the first-frame
image ControlNet (SparseCtrl RGB) before the UNet adds them. It is diffusers'
:class:`~diffusers.SparseControlNetModel` -- motion modules in every down block, no skip
connection from the noisy latents (SparseCtrl §3.2; Image Conductor finds it converges faster)
-- with two conditioning channels, no conditioning mask (every frame has a flow map) and the full
conditioning embedding (three stride-2 convolutions: pixels -> latents).

Camera LoRA and object LoRA (Image Conductor §2.4) are two named peft adapters on its linear
layers: :class:`~diffusers.SparseControlNetModel` lacks
:class:`~diffusers.loaders.PeftAdapterMixin`, so this subclass mixes it in (``add_adapter``,
``set_adapters(names, weights)``, ``disable_adapters``...). :func:`add_motion_lora` adds one,
:func:`lora_down_weights` lists an adapter's LoRA ``A`` matrices for the orthogonal loss,
:func:`save_motion_lora` and :func:`load_motion_lora` write and read them as safetensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import SparseControlNetModel, UNetMotionModel
from diffusers.loaders import PeftAdapterMixin

CAMERA_ADAPTER = "camera"
"""Name of the camera LoRA (trained on camera-only clips)."""
OBJECT_ADAPTER = "object"
"""Name of the object LoRA (trained on mixed clips over the frozen camera LoRA)."""
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
"""Linear layers that carry the LoRAs: every spatial and temporal attention projection."""
LORA_FILES = {CAMERA_ADAPTER: "camera_lora.safetensors", OBJECT_ADAPTER: "object_lora.safetensors"}
"""Where each adapter is saved, in the ControlNet's folder."""


class TrajectoryControlNetModel(SparseControlNetModel, PeftAdapterMixin):
    """Motion ControlNet over flow maps, with named LoRA adapters (see the module docstring).

    Its config is :class:`~diffusers.SparseControlNetModel`'s; :meth:`from_unet` builds one that
    matches an AnimateDiff UNet. ``forward(sample, timestep, encoder_hidden_states,
    controlnet_cond, conditioning_scale)`` takes ``sample: (B, 4, F, h, w)`` latents and
    ``controlnet_cond: (B, 2, F, H, W)`` flow maps in pixels, with ``(H, W) = vae_scale * (h, w)``.
    """

    @classmethod
    def from_unet(
        cls,
        unet: UNetMotionModel,
        conditioning_channels: int = 2,
        conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        load_weights_from_unet: bool = True,
    ) -> TrajectoryControlNetModel:
        """A motion ControlNet shaped like ``unet``'s encoder, initialised from its weights
        (spatial and motion modules), with zero-initialised conditioning embedding output and
        residual projections: adding it changes nothing until it is trained.

        ``conditioning_embedding_out_channels`` has one entry more than the VAE's number of
        2x downsamplings (SD1.5: four entries for 8x).
        """
        config = unet.config
        controlnet = cls(
            in_channels=config.in_channels,
            conditioning_channels=conditioning_channels,
            flip_sin_to_cos=True,
            freq_shift=0,
            down_block_types=tuple(config.down_block_types),
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            downsample_padding=config.downsample_padding,
            mid_block_scale_factor=config.mid_block_scale_factor,
            act_fn=config.act_fn,
            norm_num_groups=config.norm_num_groups,
            norm_eps=config.norm_eps,
            cross_attention_dim=config.cross_attention_dim,
            transformer_layers_per_block=config.transformer_layers_per_block,
            temporal_transformer_layers_per_block=config.temporal_transformer_layers_per_block,
            num_attention_heads=config.num_attention_heads,
            use_linear_projection=config.use_linear_projection,
            conditioning_embedding_out_channels=tuple(conditioning_embedding_out_channels),
            motion_max_seq_length=config.motion_max_seq_length,
            motion_num_attention_heads=config.motion_num_attention_heads,
            concat_conditioning_mask=False,
            use_simplified_condition_embedding=False,
        )
        if load_weights_from_unet:
            # Same block classes: spatial and motion weights copy one to one. Left out: the
            # second self-attention of AnimateDiff's motion modules (SparseCtrl's have one) and
            # the motion modules of the UNet's mid block (the ControlNet's is 2D).
            controlnet.conv_in.load_state_dict(unet.conv_in.state_dict())
            controlnet.time_proj.load_state_dict(unet.time_proj.state_dict())
            controlnet.time_embedding.load_state_dict(unet.time_embedding.state_dict())
            for part in ("down_blocks", "mid_block"):
                result = getattr(controlnet, part).load_state_dict(
                    getattr(unet, part).state_dict(), strict=False)
                if result.missing_keys:
                    raise ValueError(f"unet.{part} lacks {result.missing_keys[:3]}...")
        return controlnet


def image_controlnet_from_unet(unet: UNetMotionModel) -> SparseControlNetModel:
    """A first-frame image ControlNet shaped like SparseCtrl RGB (``guoyww/animatediff-sparsectrl-
    rgb``): VAE latents of the image + a mask channel, simplified (one conv) embedding. Used for
    tiny test models; real ones load from their folder."""
    config = unet.config
    return SparseControlNetModel(
        in_channels=config.in_channels,
        conditioning_channels=config.in_channels,
        down_block_types=tuple(config.down_block_types),
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        norm_num_groups=config.norm_num_groups,
        cross_attention_dim=config.cross_attention_dim,
        num_attention_heads=config.num_attention_heads,
        motion_max_seq_length=config.motion_max_seq_length,
        motion_num_attention_heads=config.motion_num_attention_heads,
        concat_conditioning_mask=True,
        use_simplified_condition_embedding=True,
    )


def add_motion_lora(controlnet: TrajectoryControlNetModel, adapter_name: str, rank: int = 64,
                    alpha: float | None = None) -> None:
    """Inject a LoRA called ``adapter_name`` (``B`` zero-initialised: no effect until trained)
    into every attention projection of ``controlnet``."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights=True,
                        target_modules=list(LORA_TARGETS))
    with warnings.catch_warnings():
        # A second named adapter is the point here, not an accident.
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        controlnet.add_adapter(config, adapter_name=adapter_name)


def lora_down_weights(model: torch.nn.Module, adapter_name: str) -> list[torch.Tensor]:
    """The ``A`` matrix, (rank, in_features), of every LoRA layer of ``adapter_name``, in module
    order: the per-layer weights ``W_i`` of the orthogonal loss (Image Conductor Eq. 4)."""
    from peft.tuners.lora import LoraLayer

    return [module.lora_A[adapter_name].weight for module in model.modules()
            if isinstance(module, LoraLayer) and adapter_name in module.lora_A]


@contextmanager
def adapters_disabled(controlnet: TrajectoryControlNetModel) -> Iterator[None]:
    """Run the base motion ControlNet (``theta_0``): every LoRA off inside the block."""
    if not getattr(controlnet, "_hf_peft_config_loaded", False):
        yield
        return
    controlnet.disable_adapters()
    try:
        yield
    finally:
        controlnet.enable_adapters()


def activate_adapters(controlnet: TrajectoryControlNetModel, names: list[str],
                      weights: list[float]) -> None:
    """Make ``names`` the active LoRAs, each scaled by its weight (peft ``set_scale``), without
    changing which parameters train (peft's ``set_adapter`` would unfreeze them)."""
    trainable = {name: p.requires_grad for name, p in controlnet.named_parameters()}
    controlnet.set_adapters(names, weights)
    for name, parameter in controlnet.named_parameters():
        parameter.requires_grad_(trainable[name])


def motion_lora_state_dict(controlnet: TrajectoryControlNetModel, adapter_name: str
                           ) -> dict[str, torch.Tensor]:
    """``adapter_name``'s LoRA weights, keys without the adapter name (peft's format)."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(controlnet, adapter_name=adapter_name)
    return {key: value.detach().contiguous() for key, value in state.items()}


def save_motion_lora(controlnet: TrajectoryControlNetModel, adapter_name: str,
                     path: str | Path) -> None:
    """Write ``adapter_name``'s LoRA as one safetensors file (rank and alpha in its metadata)."""
    from safetensors.torch import save_file

    config = controlnet.peft_config[adapter_name]
    save_file({k: v.cpu() for k, v in motion_lora_state_dict(controlnet, adapter_name).items()},
              str(path), metadata={"rank": str(config.r), "alpha": str(config.lora_alpha)})


def load_motion_lora(controlnet: TrajectoryControlNetModel, adapter_name: str,
                     path: str | Path) -> None:
    """Add ``adapter_name`` to ``controlnet`` from a file written by :func:`save_motion_lora`."""
    from peft.utils import set_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    add_motion_lora(controlnet, adapter_name, rank=int(metadata.get("rank", 64)),
                    alpha=float(metadata.get("alpha", metadata.get("rank", 64))))
    state = load_file(str(path), device=str(controlnet.device))
    result = set_peft_model_state_dict(controlnet, state, adapter_name=adapter_name)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"{path}: keys that match no LoRA layer: {unexpected[:3]}...")
