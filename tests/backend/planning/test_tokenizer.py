"""Tests of backend.planning.tokenizer: bins, invertibility, layouts, grammar, decoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from backend.camera.se3 import make_pose, rotation_angle
from backend.planning.tokenizer import (
    BOS_ID,
    EOS_ID,
    NUM_SPECIAL,
    SEP_ID,
    ShotTrajectory,
    Trajectory,
    TrajectoryTokenizer,
    upsample_shot,
)
from tests.backend.training.synthetic import synthetic_sequence

LAYOUTS = ("pose12", "gendop")
K = 6


def assert_rotations(rotations: np.ndarray) -> None:
    """Orthonormal with determinant +1, to ShotSequence's tolerance."""
    gram = np.swapaxes(rotations, -1, -2) @ rotations
    assert np.abs(gram - np.eye(3)).max() < 1e-6
    assert np.allclose(np.linalg.det(rotations), 1.0, atol=1e-6)


@st.composite
def trajectories(draw: st.DrawFn) -> Trajectory:
    """Random multi-shot trajectories inside every slot's range."""
    num_shots = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shots = []
    for _ in range(num_shots):
        rotation = Rotation.random(K, random_state=rng).as_matrix()
        direction = rng.normal(size=(K, 3))
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        translation = direction * rng.uniform(0.0, 1.0, (K, 1))
        focal = rng.uniform(0.15, 6.0, (K, 2))
        shots.append(ShotTrajectory(make_pose(rotation, translation), focal,
                                    float(10 ** rng.uniform(-0.9, 1.9))))
    return Trajectory(shots, float(10 ** rng.uniform(-1.9, 1.9)))


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_bin_round_trip_within_half_a_bin(layout: str, data: st.DataObject) -> None:
    tokenizer = TrajectoryTokenizer(layout=layout, frames_per_shot=K)
    slot = data.draw(st.integers(0, len(tokenizer.slots) - 1))
    low, high = tokenizer.slots[slot].low, tokenizer.slots[slot].high
    values = np.array(data.draw(st.lists(st.floats(low, high), min_size=1, max_size=20)))
    slots = np.full(len(values), slot)
    back, back_slots = tokenizer.tokens_to_values(tokenizer.values_to_tokens(values, slots))
    assert np.array_equal(back_slots, slots)
    assert np.abs(back - values).max() <= tokenizer.bin_width(slot) / 2 * (1 + 1e-9)


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=30, deadline=None)
@given(trajectory=trajectories())
def test_trajectory_round_trip_within_half_a_bin(layout: str, trajectory: Trajectory) -> None:
    tokenizer = TrajectoryTokenizer(layout=layout, frames_per_shot=K)
    tokens = tokenizer.encode(trajectory)
    values = tokenizer.values(trajectory)
    slots = tokenizer.slot_sequence(len(trajectory.shots))
    is_value = slots >= 0
    decoded, decoded_slots = tokenizer.tokens_to_values(tokens[is_value])
    assert np.array_equal(decoded_slots, slots[is_value])
    half = np.array([tokenizer.bin_width(s) / 2 for s in decoded_slots])
    assert np.all(np.abs(decoded - values[is_value]) <= half * (1 + 1e-9))
    # Whole poses: rotations come back proper and close, translations within half a bin.
    result = tokenizer.decode(tokens)
    for shot, back in zip(trajectory.shots, result.shots, strict=True):
        assert_rotations(back.c2w[:, :3, :3])
        assert rotation_angle(shot.c2w[:, :3, :3], back.c2w[:, :3, :3]).max() < np.deg2rad(1.5)
        assert np.abs(back.c2w[:, :3, 3] - shot.c2w[:, :3, 3]).max() <= 1 / 256 + 1e-9
        assert abs(np.log10(back.duration / shot.duration)) <= tokenizer.bin_width(
            "log_duration") / 2 + 1e-9
    assert abs(np.log10(result.scale / trajectory.scale)) <= tokenizer.bin_width(
        "log_scale") / 2 + 1e-9


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_token_is_its_own_round_trip(layout: str) -> None:
    tokenizer = TrajectoryTokenizer(layout=layout)
    tokens = np.arange(NUM_SPECIAL, tokenizer.vocab_size)
    values, slots = tokenizer.tokens_to_values(tokens)
    assert np.array_equal(tokenizer.values_to_tokens(values, slots), tokens)


def test_gendop_scale_uses_one_log_base() -> None:
    """GenDoP encodes log10(scale) but decodes with exp; here 5 m must come back as ~5 m."""
    tokenizer = TrajectoryTokenizer(layout="gendop", frames_per_shot=K)
    identity = np.repeat(np.eye(4)[None], K, 0)
    shot = ShotTrajectory(identity, np.full((K, 2), 1.0), 2.0)
    result = tokenizer.decode(tokenizer.encode(Trajectory([shot], 5.0)))
    assert abs(np.log10(result.scale) - np.log10(5.0)) <= tokenizer.bin_width("log_scale") / 2
    assert result.scale == pytest.approx(5.0, rel=0.05)


def test_gendop_quaternions_are_canonical() -> None:
    tokenizer = TrajectoryTokenizer(layout="gendop", frames_per_shot=K)
    rotation = Rotation.from_rotvec([0.0, 0.0, 3.0]).as_matrix()  # q and -q both fit it
    shot = ShotTrajectory(make_pose(np.repeat(rotation[None], K, 0), np.zeros(3)),
                          np.full((K, 2), 1.0), 1.0)
    values = tokenizer.values(Trajectory([shot], 1.0))
    qw = values[tokenizer.frame_positions(1)[..., 0]]
    assert np.all(qw >= 0)


def test_layout_sizes_and_grammar() -> None:
    tokenizer = TrajectoryTokenizer(frames_per_shot=16)
    assert len(tokenizer.frame_slots) == 13 and tokenizer.vocab_size == 4 + 15 * 256
    assert len(TrajectoryTokenizer(layout="gendop").frame_slots) == 10
    template = tokenizer.template(3)
    assert len(template) == tokenizer.sequence_length(3) == 2 + 1 + 3 * (1 + 16 * 13) + 2
    assert tuple(template[0]) == (BOS_ID, BOS_ID + 1)
    assert tuple(template[-1]) == (EOS_ID, EOS_ID + 1)
    assert np.sum(template[:, 0] == SEP_ID) == 2
    assert tokenizer.frame_positions(3).shape == (3, 16, 13)


def test_decode_rejects_broken_streams() -> None:
    tokenizer = TrajectoryTokenizer(frames_per_shot=K)
    shot = ShotTrajectory(np.repeat(np.eye(4)[None], K, 0), np.ones((K, 2)), 1.0)
    tokens = tokenizer.encode(Trajectory([shot, shot], 1.0))
    with pytest.raises(ValueError, match=r"tokens: .* take"):
        tokenizer.decode(tokens[:-1])
    broken = tokens.copy()
    broken[5] = tokens[6]  # r01's slot where r00's is expected... any other slot's id
    with pytest.raises(ValueError, match=r"tokens\[5\]"):
        tokenizer.decode(broken)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_grammatical_stream_decodes_to_proper_rotations(layout: str) -> None:
    tokenizer = TrajectoryTokenizer(layout=layout, frames_per_shot=K)
    rng = np.random.default_rng(0)
    for num_shots in (1, 2, 4):
        template = tokenizer.template(num_shots)
        for _ in range(5):
            tokens = rng.integers(template[:, 0], template[:, 1])
            result = tokenizer.decode(tokens)
            assert len(result.shots) == num_shots and result.scale > 0
            for shot in result.shots:
                assert_rotations(shot.c2w[:, :3, :3])
                assert np.all(shot.focal > 0) and shot.duration > 0


def test_from_sequence_shares_one_frame_and_carries_the_scale() -> None:
    sequence = synthetic_sequence(3, num_shots=2)
    tokenizer = TrajectoryTokenizer(frames_per_shot=8)
    trajectory = tokenizer.from_sequence(sequence)
    first = trajectory.shots[0].c2w[0]
    assert np.allclose(first, np.eye(4))
    centres = np.concatenate([s.c2w[:, :3, 3] for s in trajectory.shots])
    assert np.linalg.norm(centres, axis=-1).max() == pytest.approx(1.0)
    # Metric poses come back from the shared frame: the second shot's last camera.
    origin = sequence.shots[0].c2w[0]
    last = trajectory.shots[1].c2w[-1].copy()
    last[:3, 3] *= trajectory.scale
    assert np.allclose(origin @ last, sequence.shots[1].c2w[-1], atol=1e-9)
    assert trajectory.shots[1].duration == pytest.approx(sequence.shots[1].num_frames / 24.0)
    assert np.allclose(trajectory.shots[0].focal[:, 0], 1000.0 / 1280)


def test_upsample_keeps_the_end_keyframes() -> None:
    rotation = Rotation.from_rotvec(np.linspace([0, 0, 0], [0, 0, 1.0], K)).as_matrix()
    shot = ShotTrajectory(make_pose(rotation, np.linspace([0, 0, 0], [1.0, 0, 0], K)),
                          np.full((K, 2), 0.8), 1.0)
    c2w, focal = upsample_shot(shot, 25)
    assert c2w.shape == (25, 4, 4) and focal.shape == (25, 2)
    assert np.allclose(c2w[0], shot.c2w[0]) and np.allclose(c2w[-1], shot.c2w[-1])
    assert upsample_shot(shot, 1)[0].shape == (2, 4, 4)
