"""Resampling camera paths (slerp + lerp) and Wan's 4k + 1 frame arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from backend.camera import resample
from backend.camera.se3 import make_pose, rotation_angle

SETTINGS = settings(deadline=None, max_examples=40)


def _yaw_path(angles_deg: np.ndarray, centres: np.ndarray) -> np.ndarray:
    rotations = Rotation.from_euler("z", np.asarray(angles_deg)[:, None], degrees=True)
    return make_pose(rotations.as_matrix(), centres)


def _assert_orthonormal(c2w: np.ndarray) -> None:
    rotations = c2w[:, :3, :3]
    np.testing.assert_allclose(np.swapaxes(rotations, 1, 2) @ rotations,
                               np.broadcast_to(np.eye(3), rotations.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    np.testing.assert_array_equal(c2w[:, 3], np.broadcast_to([0, 0, 0, 1.0], (len(c2w), 4)))


# --------------------------------------------------------------------------------------------
# resample_poses


def test_samples_are_hit_at_their_own_times() -> None:
    rng = np.random.default_rng(0)
    c2w = make_pose(Rotation.random(6, random_state=1).as_matrix(), rng.normal(size=(6, 3)))
    times = np.array([0.0, 0.5, 2.0, 2.25, 7.0, 10.0])
    out = resample.resample_poses(c2w, times, times)
    np.testing.assert_allclose(out, c2w, atol=1e-12)


def test_midpoint_of_a_constant_yaw_is_the_half_angle() -> None:
    # 0 -> 90 degrees: a matrix lerp would give a scaled, non-orthonormal midpoint (cos 45 * 2^.5).
    c2w = _yaw_path(np.array([0.0, 90.0]), np.array([[0.0, 0, 0], [2.0, 4.0, -6.0]]))
    out = resample.resample_poses(c2w, np.array([0.0, 1.0]), np.array([0.25, 0.5, 0.75]))
    _assert_orthonormal(out)
    expected = Rotation.from_euler("z", [[22.5], [45.0], [67.5]], degrees=True).as_matrix()
    np.testing.assert_allclose(out[:, :3, :3], expected, atol=1e-12)
    # Centres lerp linearly.
    np.testing.assert_allclose(out[:, :3, 3], [[0.5, 1.0, -1.5], [1.0, 2.0, -3.0],
                                               [1.5, 3.0, -4.5]], atol=1e-12)
    lerped = 0.5 * (c2w[0, :3, :3] + c2w[1, :3, :3])
    assert not np.allclose(out[1, :3, :3], lerped, atol=1e-3)


def test_constant_rate_yaw_over_many_frames() -> None:
    angles = np.arange(0.0, 100.0, 10.0)  # 10 degrees per frame
    c2w = _yaw_path(angles, np.zeros((10, 3)))
    frames = np.arange(10.0)
    mids = frames[:-1] + 0.5
    out = resample.resample_poses(c2w, frames, mids)
    yaw = np.degrees(np.arctan2(out[:, 1, 0], out[:, 0, 0]))
    np.testing.assert_allclose(yaw, angles[:-1] + 5.0, atol=1e-9)


def test_slerp_takes_the_short_way_round() -> None:
    c2w = _yaw_path(np.array([170.0, -170.0]), np.zeros((2, 3)))
    out = resample.resample_poses(c2w, np.array([0.0, 1.0]), np.array([0.5]))
    yaw = np.degrees(np.arctan2(out[0, 1, 0], out[0, 0, 0]))
    assert abs(abs(yaw) - 180.0) < 1e-9


def test_no_extrapolation() -> None:
    c2w = _yaw_path(np.array([0.0, 10.0, 20.0]), np.zeros((3, 3)))
    times = np.array([0.0, 1.0, 2.0])
    for query in ([-0.01], [2.01], [0.0, 5.0]):
        with pytest.raises(ValueError, match="extrapolat"):
            resample.resample_poses(c2w, times, np.array(query))
    with pytest.raises(ValueError, match="extrapolat"):
        resample.resample_linear(np.ones((3, 4)), times, np.array([3.0]))
    # Rounding noise at the ends is not extrapolation.
    out = resample.resample_poses(c2w, times, np.array([2.0 + 1e-12, -1e-12]))
    np.testing.assert_allclose(out[0], c2w[2], atol=1e-9)
    np.testing.assert_allclose(out[1], c2w[0], atol=1e-9)


def test_single_sample_holds() -> None:
    c2w = _yaw_path(np.array([30.0]), np.array([[1.0, 2.0, 3.0]]))
    out = resample.resample_poses(c2w, np.array([4.0]), np.array([4.0, 4.0, 4.0]))
    assert out.shape == (3, 4, 4)
    np.testing.assert_array_equal(out, np.repeat(c2w, 3, axis=0))
    with pytest.raises(ValueError):
        resample.resample_poses(c2w, np.array([4.0]), np.array([5.0]))
    K = np.array([[500.0, 500.0, 320.0, 180.0]])
    np.testing.assert_array_equal(resample.resample_linear(K, [0.0], [0.0, 0.0]),
                                  np.repeat(K, 2, axis=0))


def test_input_errors() -> None:
    c2w = _yaw_path(np.array([0.0, 10.0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="increasing"):
        resample.resample_poses(c2w, np.array([1.0, 0.0]), np.array([0.5]))
    with pytest.raises(ValueError, match="increasing"):
        resample.resample_poses(c2w, np.array([1.0, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="shape"):
        resample.resample_poses(c2w, np.array([0.0, 1.0, 2.0]), np.array([0.5]))
    with pytest.raises(ValueError, match="finite"):
        resample.resample_poses(c2w, np.array([0.0, 1.0]), np.array([math.nan]))
    with pytest.raises(ValueError, match="non-empty"):
        resample.resample_poses(c2w, np.array([0.0, 1.0]), np.array([]))
    with pytest.raises(ValueError, match="rows"):
        resample.resample_linear(np.ones((3, 4)), np.array([0.0, 1.0]), np.array([0.5]))


def test_resample_linear_and_shot() -> None:
    K = np.array([[500.0, 500.0, 320.0, 180.0], [700.0, 600.0, 320.0, 180.0]])
    out = resample.resample_linear(K, np.array([0.0, 2.0]), np.array([0.0, 0.5, 1.0, 2.0]))
    np.testing.assert_allclose(out[:, 0], [500.0, 550.0, 600.0, 700.0])
    np.testing.assert_allclose(out[:, 1], [500.0, 525.0, 550.0, 600.0])

    c2w = _yaw_path(np.array([0.0, 20.0, 40.0]), np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]]))
    K3 = np.array([[500.0, 500, 320, 180], [600.0, 600, 320, 180], [800.0, 800, 320, 180]])
    poses, intrinsics = resample.resample_shot(c2w, K3, np.array([0.0, 0.5, 1.5, 2.0]))
    np.testing.assert_allclose(poses[:, 0, 3], [0.0, 0.5, 2.0, 3.0])
    np.testing.assert_allclose(intrinsics[:, 0], [500.0, 550.0, 700.0, 800.0])
    yaw = np.degrees(np.arctan2(poses[:, 1, 0], poses[:, 0, 0]))
    np.testing.assert_allclose(yaw, [0.0, 10.0, 30.0, 40.0], atol=1e-9)


@st.composite
def sampled_paths(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    gaps = draw(arrays(np.float64, (n - 1,), elements=st.floats(0.05, 5.0)))
    start = draw(st.floats(-10.0, 10.0))
    times = start + np.concatenate([[0.0], np.cumsum(gaps)])
    centres = draw(arrays(np.float64, (n, 3), elements=st.floats(-5.0, 5.0)))
    return make_pose(Rotation.random(n, random_state=seed).as_matrix(), centres), times


@SETTINGS
@given(sampled_paths(), st.integers(1, 40))
def test_resampled_poses_stay_rigid_and_reproduce_samples(path, count: int) -> None:
    c2w, times = path
    query = np.linspace(times[0], times[-1], count)
    out = resample.resample_poses(c2w, times, query)
    assert out.shape == (count, 4, 4)
    _assert_orthonormal(out)
    back = resample.resample_poses(c2w, times, times)
    np.testing.assert_allclose(back, c2w, atol=1e-9)
    # Between two samples the rotation moves monotonically along the geodesic (slerp).
    i = len(times) // 2 - 1
    fractions = np.array([0.25, 0.5, 0.75])
    mids = resample.resample_poses(c2w, times, times[i] + fractions * (times[i + 1] - times[i]))
    total = float(rotation_angle(c2w[i, :3, :3], c2w[i + 1, :3, :3]))
    angles = rotation_angle(np.broadcast_to(c2w[i, :3, :3], (3, 3, 3)), mids[:, :3, :3])
    np.testing.assert_allclose(angles, fractions * total, atol=1e-7)
    expected_centres = c2w[i, :3, 3] + fractions[:, None] * (c2w[i + 1, :3, 3] - c2w[i, :3, 3])
    np.testing.assert_allclose(mids[:, :3, 3], expected_centres, atol=1e-9)


# --------------------------------------------------------------------------------------------
# Sample times


def test_times_for_count() -> None:
    times = resample.times_for_count(49, 81)
    assert len(times) == 81 and times[0] == 0.0 and times[-1] == 48.0
    np.testing.assert_allclose(np.diff(times), 48.0 / 80)
    np.testing.assert_array_equal(resample.times_for_count(10, 10), np.arange(10.0))
    np.testing.assert_array_equal(resample.times_for_count(5, 1), [0.0])
    np.testing.assert_array_equal(resample.times_for_count(1, 3), [0.0, 0.0, 0.0])
    for bad in ((0, 5), (5, 0), (-1, 3)):
        with pytest.raises(ValueError):
            resample.times_for_count(*bad)


def test_times_for_fps_keeps_duration() -> None:
    times = resample.times_for_fps(49, 24.0, 16.0)
    assert len(times) == 33
    assert times[0] == 0.0 and times[-1] == pytest.approx(48.0)
    np.testing.assert_allclose(np.diff(times), 1.5)
    # Same rate: every frame. Double rate: every half frame.
    np.testing.assert_array_equal(resample.times_for_fps(5, 24.0, 24.0), np.arange(5.0))
    np.testing.assert_allclose(resample.times_for_fps(3, 12.0, 24.0), [0, 0.5, 1, 1.5, 2])
    # The last sample never passes the last frame.
    times = resample.times_for_fps(10, 30.0, 24.0)
    assert times[-1] <= 9.0 and times[-1] + 1.25 > 9.0
    assert len(resample.times_for_fps(1, 24.0, 8.0)) == 1
    for bad in ((0, 24.0, 16.0), (5, 0.0, 16.0), (5, 24.0, -1.0)):
        with pytest.raises(ValueError):
            resample.times_for_fps(*bad)


@SETTINGS
@given(st.integers(1, 300), st.sampled_from([8.0, 12.0, 15.0, 16.0, 23.976, 24.0, 25.0, 30.0,
                                              60.0]),
       st.sampled_from([8.0, 12.0, 16.0, 24.0, 30.0]))
def test_times_for_fps_property(num_source: int, source_fps: float, target_fps: float) -> None:
    times = resample.times_for_fps(num_source, source_fps, target_fps)
    step = source_fps / target_fps
    assert times[0] == 0.0
    assert times[-1] <= num_source - 1 + 1e-9
    assert times[-1] + step > num_source - 1 - 1e-9  # no sample left out
    np.testing.assert_allclose(np.diff(times), step)
    assert np.all(np.diff(times) > 0)


# --------------------------------------------------------------------------------------------
# Wan frame counts


def test_wan_num_frames_known() -> None:
    assert resample.wan_num_frames(81) == 81
    assert resample.wan_num_frames(1) == 1
    assert resample.wan_num_frames(49) == 49
    assert resample.wan_num_frames(80) == 81
    assert resample.wan_num_frames(78) == 77
    assert resample.wan_num_frames(79) == 81  # 19.5 rounds up
    assert resample.wan_num_frames(11) == 13  # 2.5 rounds up too (not to even)
    assert resample.wan_num_frames(3) == 5
    assert resample.wan_num_frames(80, "down") == 77
    assert resample.wan_num_frames(78, "up") == 81
    assert resample.wan_num_frames(2, "down") == 1
    with pytest.raises(ValueError, match="rounding"):
        resample.wan_num_frames(10, "closest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        resample.wan_num_frames(0)


@SETTINGS
@given(st.integers(1, 2000))
def test_wan_num_frames_property(n: int) -> None:
    nearest = resample.wan_num_frames(n)
    down = resample.wan_num_frames(n, "down")
    up = resample.wan_num_frames(n, "up")
    for value in (nearest, down, up):
        assert value % 4 == 1 and value >= 1
    assert down <= n <= up and up - down in (0, 4)
    assert abs(nearest - n) <= 2
    assert nearest in (down, up)
    if (n - 1) % 4 == 0:
        assert nearest == down == up == n


def test_num_latent_frames() -> None:
    assert resample.num_latent_frames(81) == 21
    assert resample.num_latent_frames(1) == 1
    assert resample.num_latent_frames(5) == 2
    assert resample.num_latent_frames(9, compression=8) == 2
    for bad in (0, 2, 80, 82):
        with pytest.raises(ValueError, match="4k \\+ 1"):
            resample.num_latent_frames(bad)


def test_latent_frame_groups_81() -> None:
    groups = resample.latent_frame_groups(81)
    assert len(groups) == 21
    assert groups[0].tolist() == [0]
    assert groups[1].tolist() == [1, 2, 3, 4]
    assert groups[2].tolist() == [5, 6, 7, 8]
    assert groups[-1].tolist() == [77, 78, 79, 80]
    assert all(len(g) == 4 for g in groups[1:])
    union = np.concatenate(groups)
    np.testing.assert_array_equal(union, np.arange(81))  # each frame exactly once, in order
    with pytest.raises(ValueError):
        resample.latent_frame_groups(80)


@SETTINGS
@given(st.integers(0, 60), st.sampled_from([1, 2, 4, 8]))
def test_latent_frame_groups_property(k: int, compression: int) -> None:
    n = compression * k + 1
    groups = resample.latent_frame_groups(n, compression)
    assert len(groups) == resample.num_latent_frames(n, compression) == k + 1
    assert groups[0].tolist() == [0]
    np.testing.assert_array_equal(np.concatenate(groups), np.arange(n))
    assert all(len(g) == compression for g in groups[1:])
