"""Losses of the learned planner: token cross-entropy, L2 on the camera codes, wavelet regulariser.

- :func:`trajectory_cross_entropy`: next-token cross-entropy on the trajectory tokens
  (ShotVerse §3.2.5, the main term).
- :func:`l2_regularization`: ShotVerse's L2 term, the mean squared norm of the camera codes
  (the projected query states), which keeps the planning representation compact.
- :func:`wavelet_loss`: CT-1's wavelet-domain regulariser. The trajectory the decoder *expects*
  (:func:`expected_token_values`, each value slot's softmax-weighted bin centre, differentiable)
  and the target trajectory go through a multi-level Haar transform along time (averaging
  form: every band stays in the units of the path); the loss is the mean absolute difference of
  each band, averaged over the bands. Every band weighs the same, so an error confined to one
  scale -- jitter in the finest band, a wobble in a middle one -- counts as much as a drift of
  the whole path, however few coefficients it touches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from backend.planning.tokenizer import NUM_SPECIAL

IGNORE_INDEX = -100


def trajectory_cross_entropy(logits: torch.Tensor, input_ids: torch.Tensor,
                             token_lengths: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the next token.

    logits: (B, T, V) with ``logits[:, t]`` predicting ``input_ids[:, t + 1]``; input_ids (B, T);
    token_lengths (B,): tokens after a row's length are padding and are not scored.
    """
    targets = input_ids[:, 1:].clone()
    steps = torch.arange(1, input_ids.shape[1], device=input_ids.device)
    targets[steps[None] >= token_lengths[:, None]] = IGNORE_INDEX
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                           ignore_index=IGNORE_INDEX)


def expected_token_values(logits: torch.Tensor, input_ids: torch.Tensor, num_bins: int
                          ) -> torch.Tensor:
    """Soft-decoded values: (B, T) expected bin position in [0, 1] of every value token.

    For a value token at position p (slot s), the decoder's distribution at p - 1 restricted to
    slot s's ``num_bins`` ids gives ``sum_b P(b) * (b + 0.5) / num_bins``; the slot's range maps
    that linearly to the value, so positions in [0, 1] compare slots on one footing. Special
    tokens and position 0 hold 0.
    """
    targets = input_ids[:, 1:]  # (B, T-1)
    slots = ((targets - NUM_SPECIAL).clamp(min=0) // num_bins)  # (B, T-1)
    ids = NUM_SPECIAL + slots[..., None] * num_bins + torch.arange(num_bins,
                                                                    device=logits.device)
    probs = torch.softmax(logits[:, :-1].float().gather(-1, ids), dim=-1)  # (B, T-1, bins)
    centres = (torch.arange(num_bins, device=logits.device, dtype=probs.dtype) + 0.5) / num_bins
    values = (probs * centres).sum(-1) * (targets >= NUM_SPECIAL)
    return F.pad(values, (1, 0))


def token_positions(input_ids: torch.Tensor, num_bins: int) -> torch.Tensor:
    """(B, T) the bin position in [0, 1] of every value token (the target of
    :func:`expected_token_values`); special tokens hold 0."""
    bins = (input_ids - NUM_SPECIAL).clamp(min=0) % num_bins
    return ((bins.float() + 0.5) / num_bins) * (input_ids >= NUM_SPECIAL)


def haar_transform(x: torch.Tensor, levels: int | None = None) -> list[torch.Tensor]:
    """Multi-level Haar transform along dim -2, averaging form: ``a = (x0 + x1) / 2``,
    ``d = (x0 - x1) / 2``.

    x: (..., K, C) -> ``[detail_1 (..., K/2, C), ..., detail_L, approximation_L]``, finest
    first. An odd length is padded by repeating the last sample. ``levels`` defaults to every
    level down to one sample.
    """
    bands = []
    level = 0
    while x.shape[-2] > 1 and (levels is None or level < levels):
        if x.shape[-2] % 2:
            x = torch.cat([x, x[..., -1:, :]], dim=-2)
        even, odd = x[..., 0::2, :], x[..., 1::2, :]
        bands.append((even - odd) / 2)
        x = (even + odd) / 2
        level += 1
    bands.append(x)
    return bands


def wavelet_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                 levels: int | None = None) -> torch.Tensor:
    """CT-1's wavelet regulariser: mean over Haar bands of the mean |band(pred) - band(target)|.

    prediction, target: (..., K, C) trajectories over K frames; mask: (...) bool, which leading
    entries count (e.g. shots that exist). Zero for identical trajectories.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} must have the same shape")
    bands = zip(haar_transform(prediction, levels), haar_transform(target, levels), strict=True)
    losses = []
    for band_pred, band_target in bands:
        error = (band_pred - band_target).abs().mean(dim=(-2, -1))  # (...)
        if mask is not None:
            error = (error * mask).sum() / mask.sum().clamp(min=1)
        losses.append(error.mean())
    return torch.stack(losses).mean()


def l2_regularization(camera_codes: list[torch.Tensor]) -> torch.Tensor:
    """ShotVerse's L2 term: mean squared entry of the camera codes (per sample (S * M, D))."""
    return torch.cat([codes.flatten() for codes in camera_codes]).float().pow(2).mean()


def orthogonal_loss(camera_weights: list[torch.Tensor], object_weights: list[torch.Tensor],
                    subtract_identity: bool = False) -> torch.Tensor:
    """Image Conductor's orthogonal loss (Eq. 4) between the camera and the object LoRA.

    camera_weights, object_weights: the i-th LoRA layer's weight ``W_i`` of each adapter, (r, in)
    (the LoRA ``A`` matrices, paired layer by layer). The loss is the mean over layers of
    ``||W_i,cam W_i,obj^T||_F^2``: zero exactly when every object row is orthogonal to every
    camera row of the same layer, positive otherwise. The paper prints the term as
    ``||I - W_i,cam W_i,obj^T||^2``; taken literally that charges orthogonal adapters
    ``||I||^2 = r`` and pulls the product towards the identity, against the stated aim
    ("encourage the object LoRA to learn concepts distinct from the camera LoRA"), so the
    identity is left out unless ``subtract_identity`` asks for the printed form.
    """
    if len(camera_weights) != len(object_weights) or not camera_weights:
        raise ValueError(f"camera_weights ({len(camera_weights)}) and object_weights "
                         f"({len(object_weights)}) must pair the same, non-zero number of layers")
    losses = []
    for w_cam, w_obj in zip(camera_weights, object_weights, strict=True):
        product = w_cam.float() @ w_obj.float().T  # (r_cam, in) @ (in, r_obj) -> (r_cam, r_obj)
        if subtract_identity:
            product = torch.eye(*product.shape, device=product.device) - product
        losses.append(product.pow(2).sum())
    return torch.stack(losses).mean()
