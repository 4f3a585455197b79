"""The learned planner's network (ShotVerse §3.2): VLM query encoding + OPT trajectory decoder.

1. Hierarchical prompt (§3.2.2): ``[image] global prompt, shot 1 prompt, Q_1, shot 2 prompt, Q_2
   ...`` where ``Q_k`` are ``M`` learnable query tokens of shot ``k`` (:func:`build_prompt_inputs`).
2. Context-aware encoding (§3.2.3): a Qwen3-VL model (LoRA on the language model's q/k/v/o) reads
   that sequence; its causal attention lets shot ``k``'s queries see the image, the global prompt
   and shots ``1..k``. The queries' last hidden states are the *camera codes*.
3. Trajectory decoder (§3.2.4): the codes, projected to the decoder width and joined by the
   learnable SEP embedding (``[c_1, SEP, c_2, ..., c_S]``), are the prefix of an OPT decoder
   (:class:`transformers.OPTForCausalLM`, 12 layers by default) whose token embedding is the
   learnable codebook over the trajectory vocabulary of :mod:`backend.planning.tokenizer`.
   Generation is constrained to that tokenizer's grammar and samples with nucleus sampling.

:class:`TrajectoryPlannerModel` holds the planner's own weights (queries, projection, decoder) as a
diffusers model, saved and loaded with ``save_pretrained``/``from_pretrained``; the VLM stays in
its own folder and is passed in (:class:`PlannerNetwork` binds the two for training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.loaders import PeftAdapterMixin
from torch import nn
from transformers import OPTConfig, OPTForCausalLM

from backend.planning.tokenizer import BOS_ID, EOS_ID, PAD_ID, SEP_ID, TrajectoryTokenizer

# LoRA targets: the attention projections of the VLM's language model only (not the vision tower).
LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"
IMAGE_TOKEN_TYPE = 1

# --------------------------------------------------------------------------------------------
# Helpers: an offline text tokenizer and a tiny Qwen3-VL, for tests and `train planner --tiny`

TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                       "<|video_pad|>")


def offline_text_tokenizer():
    """A byte-level tokenizer built in memory (256 byte tokens + Qwen's vision specials).

    Every string tokenizes (one token per byte), so tests need no vocabulary files.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(TINY_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")


def tiny_vlm(hidden_size: int = 32, num_layers: int = 2, seed: int = 0):
    """A randomly initialised Qwen3-VL small enough for CPU tests, with its tokenizer and
    image processor: ``(Qwen3VLForConditionalGeneration, tokenizer, image_processor)``.

    Vision: 8-pixel patches, 2x2 merge, one block; images are resized to 32x32..64x64 pixels.
    """
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    tokenizer = offline_text_tokenizer()
    start, end, image, video = tokenizer.convert_tokens_to_ids(list(TINY_SPECIAL_TOKENS[1:]))
    head_dim = 16
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size, "num_hidden_layers": num_layers,
            "num_attention_heads": max(1, hidden_size // head_dim), "num_key_value_heads": 1,
            "head_dim": head_dim, "max_position_embeddings": 4096,
            # head_dim / 2 = 8 rotary frequencies shared out as (t, h, w) = (4, 2, 2).
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [4, 2, 2], "mrope_interleaved": True},
        },
        vision_config={
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
            "patch_size": 8, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "out_hidden_size": hidden_size, "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
        image_token_id=image, video_token_id=video, vision_start_token_id=start,
        vision_end_token_id=end,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vlm = Qwen3VLForConditionalGeneration(config)
    processor = Qwen2VLImageProcessorPil(patch_size=8, merge_size=2, temporal_patch_size=2,
                                         size={"shortest_edge": 32 * 32,
                                               "longest_edge": 64 * 64})
    return vlm, tokenizer, processor


def vlm_backbone(vlm: nn.Module) -> nn.Module:
    """The ``Qwen3VLModel`` inside a Qwen3-VL for conditional generation, LoRA-wrapped or not."""
    if hasattr(vlm, "get_base_model"):  # a peft PeftModel
        vlm = vlm.get_base_model()
    return vlm.model


# --------------------------------------------------------------------------------------------
# Hierarchical prompt construction (§3.2.2)


@dataclass
class PromptInputs:
    """One planning request as VLM input ids, with the query slots marked."""

    input_ids: torch.Tensor
    """(L,) token ids; query slots hold a placeholder id that the queries replace."""
    mm_token_type_ids: torch.Tensor
    """(L,) 0 text, 1 image."""
    query_index: torch.Tensor
    """(L,) ``shot * M + m`` at the m-th query slot of a shot, -1 elsewhere."""
    pixel_values: torch.Tensor | None
    """(patches, C * T * p * p) from the image processor, or None."""
    image_grid_thw: torch.Tensor | None
    """(1, 3) patch grid of the image, or None."""


def build_prompt_inputs(
    text_tokenizer,
    vlm_config,
    prompt: str,
    shot_prompts: list[str],
    num_query_tokens: int,
    image: np.ndarray | None = None,
    image_processor=None,
) -> PromptInputs:
    """The hierarchical prompt ``[image] global, shot_1, Q_1, ..., shot_S, Q_S`` as VLM ids.

    image: optional uint8 (H, W, 3); needs ``image_processor``.
    """
    placeholder = text_tokenizer.pad_token_id
    if placeholder is None:
        placeholder = text_tokenizer.eos_token_id or 0

    def text(s: str) -> list[int]:
        return text_tokenizer(s, add_special_tokens=False)["input_ids"]

    ids: list[int] = []
    types: list[int] = []
    queries: list[int] = []

    def add(new_ids: list[int], token_type: int = 0, query: list[int] | None = None) -> None:
        ids.extend(new_ids)
        types.extend([token_type] * len(new_ids))
        queries.extend(query if query is not None else [-1] * len(new_ids))

    pixel_values = grid = None
    if image is not None:
        if image_processor is None:
            raise ValueError("image: an image was given but the planner has no image processor")
        processed = image_processor(images=[np.asarray(image, dtype=np.uint8)],
                                    return_tensors="pt")
        pixel_values, grid = processed["pixel_values"], processed["image_grid_thw"]
        count = int(grid.prod()) // vlm_config.vision_config.spatial_merge_size**2
        add([vlm_config.vision_start_token_id])
        add([vlm_config.image_token_id] * count, IMAGE_TOKEN_TYPE)
        add([vlm_config.vision_end_token_id])
    add(text(f"Global prompt: {prompt}\n"))
    for k, shot_prompt in enumerate(shot_prompts):
        add(text(f"Shot {k + 1}: {shot_prompt}\n"))
        add([placeholder] * num_query_tokens,
            query=[k * num_query_tokens + m for m in range(num_query_tokens)])
        add(text("\n"))
    return PromptInputs(torch.tensor(ids), torch.tensor(types), torch.tensor(queries),
                        pixel_values, grid)


def collate_prompts(items: list[PromptInputs], pad_id: int) -> dict[str, torch.Tensor | None]:
    """Right-pad a batch of prompts: input_ids, attention_mask, mm_token_type_ids, query_index
    (B, L); pixel_values and image_grid_thw concatenated over the images present (or None)."""
    length = max(len(item.input_ids) for item in items)

    def pad(values: torch.Tensor, fill: int) -> torch.Tensor:
        return F.pad(values, (0, length - len(values)), value=fill)

    images = [item for item in items if item.pixel_values is not None]
    return {
        "input_ids": torch.stack([pad(item.input_ids, pad_id) for item in items]),
        "attention_mask": torch.stack([pad(torch.ones_like(item.input_ids), 0)
                                       for item in items]),
        "mm_token_type_ids": torch.stack([pad(item.mm_token_type_ids, 0) for item in items]),
        "query_index": torch.stack([pad(item.query_index, -1) for item in items]),
        "pixel_values": torch.cat([item.pixel_values for item in images]) if images else None,
        "image_grid_thw": torch.cat([item.image_grid_thw for item in images]) if images else None,
    }


# --------------------------------------------------------------------------------------------
# Sampling


def nucleus_sample(logits: torch.Tensor, top_p: float, temperature: float,
                   generator: torch.Generator) -> int:
    """Sample one index from logits (V,) with nucleus (top-p) sampling; temperature 0 = argmax.

    Runs on the CPU with a CPU generator, so a seed gives the same draw on every device.
    """
    logits = logits.detach().float().cpu()
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = torch.sort(probs, descending=True)
    # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p
    sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
    choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
    return int(order[choice])


# --------------------------------------------------------------------------------------------
# The planner model


@dataclass
class PlannerModelOutput:
    """Decoder logits at the trajectory-token positions."""

    logits: torch.Tensor
    """(B, T, V): ``logits[b, t]`` predicts ``input_ids[b, t + 1]``; padded rows are zeros."""
    camera_codes: list[torch.Tensor]
    """Per sample (S * M, D): the projected query states (the decoder prefix without SEPs)."""


class TrajectoryPlannerModel(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """Query tokens, query projection and the OPT trajectory decoder of ShotVerse's planner.

    Args:
        vlm_hidden_size: width of the VLM's language model (Qwen3-VL-2B: 2048).
        num_query_tokens: M, learnable query tokens per shot.
        max_shots: shots the query table holds (each shot index has its own M queries).
        num_bins: bins per trajectory slot (tokenizer).
        token_layout: ``"pose12"`` or ``"gendop"`` (tokenizer).
        frames_per_shot: keyframes per shot K (tokenizer).
        decoder_layers: OPT layers (ShotVerse: 12).
        decoder_hidden_size: OPT width (the codebook dimension).
        decoder_attention_heads: OPT attention heads.
        decoder_ffn_dim: OPT feed-forward width.
        max_position_embeddings: longest prefix + trajectory the decoder accepts.
        dropout: OPT dropout.
    """

    @register_to_config
    def __init__(
        self,
        vlm_hidden_size: int = 2048,
        num_query_tokens: int = 8,
        max_shots: int = 16,
        num_bins: int = 256,
        token_layout: str = "pose12",
        frames_per_shot: int = 16,
        decoder_layers: int = 12,
        decoder_hidden_size: int = 768,
        decoder_attention_heads: int = 12,
        decoder_ffn_dim: int = 3072,
        max_position_embeddings: int = 4096,
        dropout: float = 0.1,
    ):
        super().__init__()
        vocab_size = self.trajectory_tokenizer.vocab_size
        # (max_shots, M, vlm_hidden): shot k's planning slots, inserted into the VLM sequence.
        self.query_tokens = nn.Parameter(torch.randn(max_shots, num_query_tokens,
                                                     vlm_hidden_size) * 0.02)
        # (..., vlm_hidden) -> (..., decoder_hidden)
        self.proj = nn.Linear(vlm_hidden_size, decoder_hidden_size)
        # Untied head: the token embedding is the codebook, the head a separate projection
        # (safetensors stores no shared tensors).
        self.decoder = OPTForCausalLM(OPTConfig(
            vocab_size=vocab_size, hidden_size=decoder_hidden_size,
            num_hidden_layers=decoder_layers, ffn_dim=decoder_ffn_dim,
            num_attention_heads=decoder_attention_heads,
            max_position_embeddings=max_position_embeddings,
            word_embed_proj_dim=decoder_hidden_size, dropout=dropout, attention_dropout=dropout,
            pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
            tie_word_embeddings=False,
        ))

    @property
    def trajectory_tokenizer(self) -> TrajectoryTokenizer:
        """The tokenizer whose vocabulary the decoder speaks."""
        return TrajectoryTokenizer(self.config.num_bins, self.config.token_layout,
                                   self.config.frames_per_shot)

    @property
    def codebook(self) -> nn.Embedding:
        """The learnable codebook: (V, decoder_hidden) trajectory-token embeddings."""
        return self.decoder.get_input_embeddings()

    # -- Context-aware encoding (§3.2.3) -----------------------------------------------------

    def encode_prompts(self, vlm: nn.Module, batch: dict[str, torch.Tensor | None]
                       ) -> list[torch.Tensor]:
        """Run the VLM with the queries in their slots; return per sample the camera codes
        (S * M, decoder_hidden), shot-major.

        vlm: the ``Qwen3VLModel`` (:func:`vlm_backbone`); batch: :func:`collate_prompts`.
        """
        input_ids, query_index = batch["input_ids"], batch["query_index"]
        if int(query_index.max()) >= self.query_tokens.shape[0] * self.query_tokens.shape[1]:
            raise ValueError(f"shots: the planner holds queries for at most "
                             f"{self.config.max_shots} shots")
        embeds = vlm.get_input_embeddings()(input_ids)  # (B, L, vlm_hidden)
        is_query = query_index >= 0
        queries = self.query_tokens.flatten(0, 1)[query_index.clamp(min=0)]  # (B, L, vlm_hidden)
        embeds = torch.where(is_query[..., None], queries.to(embeds.dtype), embeds)
        # Multimodal RoPE positions from the ids (the model can only infer them from ids).
        position_ids, _ = vlm.get_rope_index(
            input_ids, batch["mm_token_type_ids"], image_grid_thw=batch["image_grid_thw"],
            attention_mask=batch["attention_mask"])
        hidden = vlm(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                     position_ids=position_ids, pixel_values=batch["pixel_values"],
                     image_grid_thw=batch["image_grid_thw"]).last_hidden_state
        codes = self.proj(hidden[is_query].to(self.proj.weight.dtype))  # (sum S*M, D)
        return list(torch.split(codes, is_query.sum(dim=1).tolist()))

    # -- Trajectory decoder (§3.2.4) ---------------------------------------------------------

    def build_prefix(self, camera_codes: torch.Tensor) -> torch.Tensor:
        """(S * M, D) camera codes -> (S * M + S - 1, D): ``[c_1, SEP, c_2, ..., c_S]``."""
        shots = camera_codes.unflatten(0, (-1, self.config.num_query_tokens))  # (S, M, D)
        sep = self.codebook.weight[SEP_ID][None]  # (1, D)
        parts = []
        for k, codes in enumerate(shots):
            if k:
                parts.append(sep)
            parts.append(codes)
        return torch.cat(parts)

    def forward(
        self,
        camera_codes: list[torch.Tensor],
        input_ids: torch.Tensor,
        token_lengths: torch.Tensor,
        return_dict: bool = True,
    ) -> PlannerModelOutput | tuple:
        """Teacher-forced decoding.

        camera_codes: per sample (S_b * M, D); input_ids: (B, T) trajectory tokens, BOS first,
        PAD after ``token_lengths`` (B,). Each row is ``[prefix_b, tokens_b]`` packed to the left
        and right-padded, so no row has a gap.
        """
        token_embeds = self.codebook(input_ids)  # (B, T, D)
        prefixes = [self.build_prefix(codes) for codes in camera_codes]
        lengths = [len(p) + int(n) for p, n in zip(prefixes, token_lengths, strict=True)]
        width = max(lengths)
        if width > self.config.max_position_embeddings:
            raise ValueError(f"input_ids: prefix + trajectory = {width} positions, more than "
                             f"max_position_embeddings {self.config.max_position_embeddings}")
        rows = [F.pad(torch.cat([prefix, token_embeds[b, : int(token_lengths[b])]]),
                      (0, 0, 0, width - lengths[b])) for b, prefix in enumerate(prefixes)]
        mask = torch.stack([(torch.arange(width, device=input_ids.device) < n).long()
                            for n in lengths])
        logits = self.decoder(inputs_embeds=torch.stack(rows), attention_mask=mask).logits
        steps = input_ids.shape[1]
        token_logits = torch.stack([
            F.pad(logits[b, len(p): len(p) + int(token_lengths[b])],
                  (0, 0, 0, steps - int(token_lengths[b])))
            for b, p in enumerate(prefixes)])  # (B, T, V)
        if not return_dict:
            return token_logits, camera_codes
        return PlannerModelOutput(token_logits, camera_codes)

    @torch.no_grad()
    def generate(
        self,
        camera_codes: torch.Tensor,
        template: np.ndarray,
        generator: torch.Generator,
        top_p: float = 0.9,
        temperature: float = 1.0,
    ) -> np.ndarray:
        """Sample one trajectory: camera_codes (S * M, D) -> token ids (T,).

        template: (T, 2) allowed id range per position (tokenizer grammar); the first is BOS.
        Each step samples only inside its range (nucleus sampling), so the result always
        decodes; single-id positions (SEP, EOS) are forced. Uses the decoder's KV cache.
        """
        prefix = self.build_prefix(camera_codes)[None]  # (1, P, D)
        tokens = [int(template[0, 0])]
        embeds = torch.cat([prefix, self.codebook(prefix.new_tensor(tokens).long())[None]], 1)
        length = embeds.shape[1]
        out = self.decoder(inputs_embeds=embeds, attention_mask=torch.ones(
            1, length, dtype=torch.long, device=embeds.device), use_cache=True)
        for t in range(1, len(template)):
            low, high = int(template[t, 0]), int(template[t, 1])
            if high - low == 1:
                token = low
            else:
                token = low + nucleus_sample(out.logits[0, -1, low:high], top_p, temperature,
                                             generator)
            tokens.append(token)
            if t == len(template) - 1:
                break
            length += 1
            step = self.codebook(torch.tensor([[token]], device=embeds.device))
            out = self.decoder(inputs_embeds=step, past_key_values=out.past_key_values,
                               attention_mask=torch.ones(1, length, dtype=torch.long,
                                                         device=embeds.device), use_cache=True)
        return np.array(tokens, dtype=np.int64)


class PlannerNetwork(nn.Module):
    """The VLM (LoRA-wrapped for training) and the planner model as one module, for training
    and for :class:`accelerate.Accelerator`."""

    def __init__(self, vlm: nn.Module, planner: TrajectoryPlannerModel):
        super().__init__()
        self.vlm = vlm
        self.planner = planner

    def forward(self, prompts: dict[str, torch.Tensor | None], input_ids: torch.Tensor,
                token_lengths: torch.Tensor) -> PlannerModelOutput:
        """prompts: :func:`collate_prompts`; input_ids / token_lengths: as
        :meth:`TrajectoryPlannerModel.forward`."""
        codes = self.planner.encode_prompts(vlm_backbone(self.vlm), prompts)
        return self.planner(codes, input_ids, token_lengths)
