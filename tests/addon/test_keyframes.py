"""blender_addon.keyframes: rotation continuity and Bezier key reduction, checked independently.

The Bezier curves are evaluated here from the keys' control points with de Casteljau's algorithm
and a bisection on the frame coordinate, not with the module's own evaluator; rotations are
compared with scipy. test_plan_import checks the same keys against Blender's F-curves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from blender_addon import keyframes as kf

FLOAT32_SLACK = 1e-6  # relative: keys and handles are stored as float32


def de_casteljau(points: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of Bezier curves with control points (M, 4, 2) at parameters t (M,): (M, 2)."""
    t = t[:, None, None]
    while points.shape[1] > 1:
        points = (1.0 - t) * points[:, :-1] + t * points[:, 1:]
    return points[:, 0]


def evaluate_independently(keys: kf.ChannelKeys, frames: np.ndarray) -> np.ndarray:
    """The F-curve at ``frames``: constant outside the keys, Bezier segments between."""
    frames = np.asarray(frames, dtype=np.float64)
    co = keys.co
    if len(co) == 1:
        return np.full(len(frames), co[0, 1])
    # The handles never reach past the neighbouring key, so x(t) is monotone on every segment.
    assert np.all(keys.handle_right[:-1, 0] <= co[1:, 0])
    assert np.all(keys.handle_left[1:, 0] >= co[:-1, 0])
    i = np.clip(np.searchsorted(co[:, 0], frames, side="right") - 1, 0, len(co) - 2)
    control = np.stack([co[i], keys.handle_right[i], keys.handle_left[i + 1], co[i + 1]], axis=1)
    low, high = np.zeros(len(frames)), np.ones(len(frames))
    for _ in range(60):
        mid = 0.5 * (low + high)
        before = de_casteljau(control, mid)[:, 0] < frames
        low, high = np.where(before, mid, low), np.where(before, high, mid)
    out = de_casteljau(control, 0.5 * (low + high))[:, 1]
    out = np.where(frames <= co[0, 0], co[0, 1], out)
    return np.where(frames >= co[-1, 0], co[-1, 1], out)


def curves(keys: list[kf.ChannelKeys], frames: np.ndarray) -> np.ndarray:
    return np.stack([evaluate_independently(k, frames) for k in keys], axis=-1)


def key_frames(keys: list[kf.ChannelKeys]) -> set[float]:
    return {float(f) for k in keys for f in k.frames}


def smooth_rotations(seed: int, n: int, max_step_deg: float) -> np.ndarray:
    """A random rotation path (n, 3, 3): a random start and small random angular velocities."""
    rng = np.random.default_rng(seed)
    velocity = np.cumsum(rng.normal(size=(n, 3)), axis=0)
    velocity *= math.radians(max_step_deg) / max(np.linalg.norm(velocity, axis=-1).max(), 1e-9)
    start = Rotation.random(random_state=seed)
    rotations = [start]
    for step in velocity[1:]:
        rotations.append(Rotation.from_rotvec(step) * rotations[-1])
    return np.stack([r.as_matrix() for r in rotations])


# ------------------------------------------------------------------------------------------------
# Rotations


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 60), flips=st.integers(0, 2**60))
def test_quaternion_continuity_has_no_flips(seed: int, n: int, flips: int) -> None:
    rotations = smooth_rotations(seed, n, max_step_deg=30.0)
    quats = kf.quaternions_from_matrices(rotations)
    signs = np.array([-1.0 if flips >> i & 1 else 1.0 for i in range(n)])
    continuous = kf.make_quaternions_continuous(quats * signs[:, None])
    assert np.all(np.einsum("ij,ij->i", continuous[1:], continuous[:-1]) >= 0.0)
    # The same rotations: q or -q of scipy's (scalar-last) quaternion.
    reference = Rotation.from_matrix(rotations).as_quat()[:, [3, 0, 1, 2]]
    assert np.allclose(np.abs(np.einsum("ij,ij->i", continuous, reference)), 1.0, atol=1e-9)
    assert np.allclose(kf.matrices_from_quaternions(continuous), rotations, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 80))
def test_eulers_from_matrices_have_no_flips(seed: int, n: int) -> None:
    rotations = smooth_rotations(seed, n, max_step_deg=10.0)
    eulers = kf.eulers_from_matrices(rotations)
    assert np.all(np.abs(np.diff(eulers, axis=0)) < math.pi)
    # Blender's XYZ Euler is scipy's extrinsic "xyz": R = Rz @ Ry @ Rx.
    assert np.allclose(Rotation.from_euler("xyz", eulers).as_matrix(), rotations, atol=1e-9)
    assert np.allclose(kf.matrices_from_eulers(eulers), rotations, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 60))
def test_make_eulers_compatible_undoes_wraps_and_flips(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    # A smooth path away from gimbal lock, then scrambled: 2π wraps and flipped triples.
    smooth = np.cumsum(rng.uniform(-0.05, 0.05, size=(n, 3)), axis=0) + rng.uniform(-1, 1, 3)
    smooth[:, 1] = np.clip(smooth[:, 1], -1.2, 1.2)
    scrambled = smooth + 2 * math.pi * rng.integers(-2, 3, size=(n, 3))
    flip = rng.random(n) < 0.5
    scrambled[flip] = scrambled[flip] + [math.pi, 0.0, math.pi]
    scrambled[flip, 1] = math.pi - scrambled[flip, 1]
    compatible = kf.make_eulers_compatible(scrambled, previous=smooth[0])
    assert np.allclose(compatible, smooth, atol=1e-9)
    assert np.allclose(kf.matrices_from_eulers(compatible), kf.matrices_from_eulers(smooth))


def test_eulers_cross_plus_minus_180_without_a_jump() -> None:
    """A pan through 180°: the raw decomposition jumps by 2π, the compatible one continues."""
    pan = np.radians(np.linspace(150.0, 210.0, 61))
    eulers = np.stack([np.full_like(pan, math.radians(80.0)), np.zeros_like(pan), pan], axis=-1)
    rotations = Rotation.from_euler("xyz", eulers).as_matrix()
    assert np.abs(np.diff(Rotation.from_matrix(rotations).as_euler("xyz"), axis=0)).max() > 6.0
    result = kf.eulers_from_matrices(rotations)
    assert np.allclose(result, eulers, atol=1e-9)


def test_eulers_match_mathutils_compatible_decomposition() -> None:
    pytest.importorskip("bpy")
    from mathutils import Euler, Matrix

    rotations = smooth_rotations(7, 50, max_step_deg=12.0)
    ours = kf.eulers_from_matrices(rotations)
    previous = Matrix(rotations[0].tolist()).to_euler("XYZ")
    theirs = [tuple(previous)]
    for matrix in rotations[1:]:
        previous = Matrix(matrix.tolist()).to_euler("XYZ", previous)
        theirs.append(tuple(previous))
    assert np.allclose(ours, theirs, atol=1e-5)  # mathutils works in float32
    assert isinstance(previous, Euler)


def test_quaternion_angles_are_accurate_for_tiny_angles() -> None:
    angle = 1e-7
    a = np.array([[1.0, 0.0, 0.0, 0.0]])
    b = np.array([[math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0]])
    assert kf.quaternion_angles(a, -b)[0] == pytest.approx(angle, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# Bezier reduction


def test_linear_dolly_needs_two_keys() -> None:
    frames = np.arange(1, 121, dtype=np.float64)
    positions = np.stack([np.linspace(0.0, 6.0, 120), np.full(120, -4.0),
                          np.linspace(1.5, 2.5, 120)], axis=-1)
    keys = kf.reduce_to_bezier(frames, positions, 0.001, error=kf.distance_error)
    assert [len(k) for k in keys] == [2, 1, 2]
    assert key_frames(keys) == {1.0, 120.0}
    error = np.linalg.norm(curves(keys, frames) - positions, axis=-1)
    assert error.max() <= 1e-5


def test_constant_channels_get_one_flat_key() -> None:
    frames = np.arange(10, 70, dtype=np.float64)
    values = np.tile([3.25, -1.0, 0.0], (60, 1))
    keys = kf.reduce_to_bezier(frames, values, 0.001)
    assert [len(k) for k in keys] == [1, 1, 1]
    for k, value in zip(keys, values[0], strict=True):
        assert k.co.tolist() == [[10.0, value]]
        assert k.handle_left[0, 1] == k.handle_right[0, 1] == value
    (single,) = kf.reduce_to_bezier(np.array([5.0]), np.array([2.0]), 0.1)
    assert single.co.tolist() == [[5.0, 2.0]]


def test_cubic_zoom_needs_two_keys() -> None:
    """A smoothstep zoom is a cubic: exact slopes at the two ends reproduce it."""
    frames = np.arange(1, 121, dtype=np.float64)
    t = (frames - 1) / 119
    lens = 35.0 + 50.0 * (3 * t**2 - 2 * t**3)
    (keys,) = kf.reduce_to_bezier(frames, lens, 3e-7 * 85.0, constant_tolerance=1e-6)
    assert len(keys) == 2
    assert np.abs(evaluate_independently(keys, frames) - lens).max() <= 3e-7 * 85.0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 150),
       tolerance=st.sampled_from([1e-4, 1e-3, 1e-2]), noise=st.sampled_from([0.0, 1e-4, 1e-2]))
def test_reduction_stays_within_tolerance_at_every_frame(
    seed: int, n: int, tolerance: float, noise: float
) -> None:
    rng = np.random.default_rng(seed)
    frames = np.arange(n, dtype=np.float64) + rng.integers(-50, 200)
    t = np.linspace(0.0, 1.0, n)[:, None]
    values = (rng.uniform(-3, 3, 3) * np.sin(rng.uniform(0, 8, 3) * t + rng.uniform(0, 6, 3))
              + rng.uniform(-5, 5, 3) * t + rng.normal(scale=noise, size=(n, 3)))
    keys = kf.reduce_to_bezier(frames, values, tolerance, error=kf.distance_error)
    error = np.linalg.norm(curves(keys, frames) - values, axis=-1)
    assert error.max() <= tolerance * (1 + 1e-6) + FLOAT32_SLACK * np.abs(values).max()
    assert {frames[0], frames[-1]} <= key_frames(keys)
    for k in keys:
        # ALIGNED handles: both handles of a key lie on one line through it, a third of the way.
        left, right = k.co - k.handle_left, k.handle_right - k.co
        cross = left[:, 0] * right[:, 1] - left[:, 1] * right[:, 0]
        assert np.allclose(cross, 0.0, atol=1e-4 * (1 + np.abs(k.co[:, 1]).max()))
        assert np.all(left[:, 0] > 0) and np.all(right[:, 0] > 0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 120),
       mode=st.sampled_from(["XYZ", "QUATERNION"]))
def test_rotation_reduction_bounds_the_rotation_angle(seed: int, n: int, mode: str) -> None:
    rotations = smooth_rotations(seed, n, max_step_deg=4.0)
    frames = np.arange(1, n + 1, dtype=np.float64)
    tolerance = math.radians(0.05)
    if mode == "XYZ":
        values = kf.eulers_from_matrices(rotations)
        keys = kf.reduce_to_bezier(frames, values, tolerance, error=kf.euler_angle_error)
        played = Rotation.from_euler("xyz", curves(keys, frames))
    else:
        values = kf.quaternions_from_matrices(rotations)
        keys = kf.reduce_to_bezier(frames, values, tolerance, error=kf.quaternion_angle_error)
        played = Rotation.from_quat(curves(keys, frames)[:, [1, 2, 3, 0]])  # normalises
    angle = (played.inv() * Rotation.from_matrix(rotations)).magnitude()
    assert angle.max() <= tolerance + 1e-6


def test_smooth_orbit_needs_few_keys() -> None:
    frames = np.arange(1, 121, dtype=np.float64)
    phi = np.radians(np.linspace(100.0, 300.0, 120))
    positions = np.stack([6 * np.cos(phi), 6 * np.sin(phi), np.linspace(1.6, 2.1, 120)], axis=-1)
    keys = kf.reduce_to_bezier(frames, positions, 0.001, error=kf.distance_error)
    assert len(key_frames(keys)) <= 10
    assert np.linalg.norm(curves(keys, frames) - positions, axis=-1).max() <= 0.001


def test_module_evaluator_matches_the_independent_one() -> None:
    rng = np.random.default_rng(3)
    frames = np.arange(0, 90, dtype=np.float64)
    values = np.cumsum(rng.normal(size=90))
    (keys,) = kf.reduce_to_bezier(frames, values, 0.05)
    fine = np.linspace(-5, 95, 1001)
    assert np.allclose(kf.evaluate_keys(keys, fine), evaluate_independently(keys, fine),
                       atol=1e-9)


@pytest.mark.parametrize(("frames", "values", "tolerance", "message"), [
    ([1.0, 1.0, 2.0], [0.0, 1.0, 2.0], 0.1, "increasing"),
    ([1.0, 2.0], [0.0, float("nan")], 0.1, "finite"),
    ([1.0, 2.0], [0.0, 1.0], 0.0, "tolerance"),
])
def test_reduction_rejects_bad_input(frames, values, tolerance, message) -> None:
    with pytest.raises(ValueError, match=message):
        kf.reduce_to_bezier(np.array(frames), np.array(values), tolerance)
