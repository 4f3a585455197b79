"""Tests of backend.training.losses: cross-entropy, soft decoding, wavelet and L2 terms."""

from __future__ import annotations

import itertools

import torch

from backend.planning.tokenizer import NUM_SPECIAL
from backend.training.losses import (
    expected_token_values,
    haar_transform,
    l2_regularization,
    token_positions,
    trajectory_cross_entropy,
    wavelet_loss,
)


def smooth_path(frames: int = 16) -> torch.Tensor:
    """(2, frames, 3): two smooth curves."""
    t = torch.linspace(0, 1, frames)[:, None]
    return torch.stack([torch.cat([t, t**2, torch.sin(t)], -1),
                        torch.cat([-t, 0.5 * t, torch.cos(t)], -1)])


def test_wavelet_loss_is_zero_for_identical_paths() -> None:
    path = smooth_path()
    assert wavelet_loss(path, path.clone()).item() == 0.0


def test_wavelet_loss_grows_with_high_frequency_jitter() -> None:
    path = smooth_path()
    alternating = (-1.0) ** torch.arange(16)[:, None]  # the finest scale only
    losses = [wavelet_loss(path + a * alternating, path).item() for a in (0.0, 0.01, 0.05, 0.2)]
    assert losses[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(losses))
    # The jitter lands in the finest band alone.
    bands = haar_transform(alternating[None].expand(1, 16, 3))
    assert bands[0].abs().min() == 1.0 and all(b.abs().max() == 0 for b in bands[1:])


def test_wavelet_loss_masks_missing_shots() -> None:
    path = smooth_path()
    noisy = path.clone()
    noisy[1] += 0.3 * torch.randn_like(noisy[1])
    mask = torch.tensor([True, False])
    assert wavelet_loss(noisy, path, mask).item() == 0.0
    assert wavelet_loss(noisy, path).item() > 0.0


def test_haar_levels_and_odd_lengths() -> None:
    bands = haar_transform(torch.randn(5, 2))
    assert [b.shape[0] for b in bands] == [3, 2, 1, 1]


def test_cross_entropy_ignores_padding_and_rewards_the_right_token() -> None:
    vocab = 10
    input_ids = torch.tensor([[1, 5, 6, 2], [1, 7, 0, 0]])
    lengths = torch.tensor([4, 2])
    logits = torch.zeros(2, 4, vocab)
    perfect = logits.clone()
    for b in range(2):
        for t in range(int(lengths[b]) - 1):
            perfect[b, t, input_ids[b, t + 1]] = 50.0
    assert trajectory_cross_entropy(perfect, input_ids, lengths).item() < 1e-6
    assert trajectory_cross_entropy(logits, input_ids, lengths).item() == torch.log(
        torch.tensor(float(vocab))).item()
    # Changing a padded row's logits changes nothing.
    perfect[1, 1:] = torch.randn(3, vocab)
    assert trajectory_cross_entropy(perfect, input_ids, lengths).item() < 1e-6


def test_expected_values_of_a_certain_decoder_are_the_bin_centres() -> None:
    bins = 8
    vocab = NUM_SPECIAL + 2 * bins
    input_ids = torch.tensor([[1, NUM_SPECIAL + 3, NUM_SPECIAL + bins + 6, 2]])
    logits = torch.full((1, 4, vocab), -50.0)
    logits[0, 0, NUM_SPECIAL + 3] = 50.0
    logits[0, 1, NUM_SPECIAL + bins + 6] = 50.0
    expected = expected_token_values(logits, input_ids, bins)
    target = token_positions(input_ids, bins)
    assert torch.allclose(expected, target)
    assert torch.allclose(target, torch.tensor([[0.0, 3.5 / bins, 6.5 / bins, 0.0]]))
    # A flat distribution over the slot expects its middle, and the gradient reaches the logits.
    flat = torch.zeros(1, 4, vocab, requires_grad=True)
    values = expected_token_values(flat, input_ids, bins)
    assert torch.allclose(values[0, 1:3], torch.tensor([0.5, 0.5]))
    values.sum().backward()
    assert flat.grad is not None


def test_l2_regularization_is_the_mean_square() -> None:
    codes = [torch.full((4, 3), 2.0), torch.zeros(2, 3)]
    assert abs(l2_regularization(codes).item() - 4.0 * 12 / 18) < 1e-6
