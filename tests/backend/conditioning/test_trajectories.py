"""Trajectory flow maps (Image Conductor): tracks, resampling, sparse sampling, flow and blur."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from backend.camera.se3 import make_pose
from backend.conditioning import (
    Track,
    blur_flow,
    blur_parameters,
    flow_maps,
    gaussian_kernel,
    resample_tracks,
    sample_tracks,
    scene_point_tracks,
    subject_tracks,
    trajectory_condition,
)
from backend.shots import ObjectTrack, Shot, ShotSequence, SubjectTrack

W, H = 96, 64


def _moving_right(num_frames: int, k: float, start=(20.5, 30.5)) -> Track:
    uv = np.array(start) + np.outer(np.arange(num_frames), [k, 0.0])
    return Track(uv=uv, visible=np.ones(num_frames, bool), name="ball")


def _static(num_frames: int, at=(70.5, 10.5)) -> Track:
    return Track(uv=np.tile(at, (num_frames, 1)), visible=np.ones(num_frames, bool), name="rock")


def _shot(c2w: np.ndarray, subjects: list[SubjectTrack] | None = None) -> Shot:
    n = len(c2w)
    K = np.tile([80.0, 80.0, W / 2, H / 2], (n, 1))
    return Shot(name="s", camera="cam", frame_start=1, frame_end=n, c2w=c2w, K=K,
                subjects=subjects or [])


def _pan(num_frames: int, degrees_per_frame: float) -> np.ndarray:
    """Camera at the origin turning about its own y axis (down): positive angles pan right."""
    angles = np.arange(num_frames) * degrees_per_frame
    return make_pose(Rotation.from_euler("y", angles[:, None], degrees=True).as_matrix(),
                     np.zeros((num_frames, 3)))


def _wall(count: int = 60, seed: int = 0) -> np.ndarray:
    """Points on a plane 5 m in front of the first camera, inside its view."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-2, 2, count), rng.uniform(-1.5, 1.5, count),
                            np.full(count, 5.0)])


# --------------------------------------------------------------------------------------------
# Flow maps


@pytest.mark.parametrize("k", [1.0, 3.0, -2.0])
def test_subject_moving_right_gives_k_at_its_track_and_zero_far_away(k):
    track = _moving_right(8, k, start=(40.5, 30.5))
    maps = flow_maps([track], 8, H, W)
    assert maps.shape == (8, 2, H, W)
    assert torch.count_nonzero(maps[0]) == 0
    for f in range(1, 8):
        col, row = np.floor(track.uv[f - 1]).astype(int)
        assert maps[f, 0, row, col].item() == pytest.approx(k)
        assert maps[f, 1, row, col].item() == 0
        assert torch.count_nonzero(maps[f]) == 1
    blurred = blur_flow(maps)
    for f in range(1, 8):
        col, row = np.floor(track.uv[f - 1]).astype(int)
        assert blurred[f, 0, row, col].item() == pytest.approx(k, rel=1e-5)
        assert blurred[f, 0, 2, 2].abs().item() < 1e-6 * abs(k)
        assert blurred[f, 1].abs().max().item() < 1e-6
    assert blurred[0].abs().max().item() == 0


def test_invisible_frames_contribute_nothing():
    track = _moving_right(8, 2.0)
    track.visible[3] = False  # hides steps 2 -> 3 and 3 -> 4
    maps = flow_maps([track], 8, H, W)
    for f in range(1, 8):
        nonzero = torch.count_nonzero(maps[f]).item()
        assert nonzero == (0 if f in (3, 4) else 1), f
    hidden = Track(uv=track.uv, visible=np.zeros(8, bool))
    assert torch.count_nonzero(blur_flow(flow_maps([hidden], 8, H, W))) == 0


def test_tracks_leaving_the_image_are_dropped_and_shared_pixels_average():
    outside = Track(uv=np.array([[-5.0, 3.0], [-1.0, 3.0]]), visible=np.ones(2, bool))
    assert torch.count_nonzero(flow_maps([outside], 2, H, W)) == 0
    a = Track(uv=np.array([[10.2, 10.2], [12.2, 10.2]]), visible=np.ones(2, bool))
    b = Track(uv=np.array([[10.7, 10.9], [14.7, 10.9]]), visible=np.ones(2, bool))
    maps = flow_maps([a, b], 2, H, W)
    assert maps[1, 0, 10, 10].item() == pytest.approx(3.0)


def test_flow_maps_follow_device_and_dtype():
    maps = flow_maps([_moving_right(4, 1.0)], 4, H, W, device="cpu", dtype=torch.float64)
    assert maps.dtype == torch.float64 and maps.device.type == "cpu"
    assert blur_flow(maps).dtype == torch.float64
    assert blur_flow(maps.to(torch.bfloat16)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="resample it first"):
        flow_maps([_moving_right(5, 1.0)], 4, H, W)


# --------------------------------------------------------------------------------------------
# Gaussian


def test_gaussian_kernel_normalisation_and_symmetry():
    kernel = gaussian_kernel(99, 10.0, dtype=torch.float64)
    assert kernel.shape == (99, 99)
    assert kernel[49, 49].item() == pytest.approx(1.0)
    assert kernel.max().item() == pytest.approx(1.0)
    torch.testing.assert_close(kernel, kernel.T)
    torch.testing.assert_close(kernel, kernel.flip(0))
    torch.testing.assert_close(kernel, kernel.flip(1))
    assert kernel[49, 59].item() == pytest.approx(np.exp(-0.5))  # one sigma away
    summed = gaussian_kernel(99, 10.0, "sum", dtype=torch.float64)
    assert summed.sum().item() == pytest.approx(1.0)
    assert summed[49, 49].item() == pytest.approx(1 / (2 * np.pi * 100), rel=1e-3)
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(98, 10.0)


def test_blur_of_an_impulse_is_the_kernel():
    impulse = torch.zeros(1, 2, 41, 41, dtype=torch.float64)
    impulse[0, 0, 20, 20] = 3.0
    blurred = blur_flow(impulse, kernel_size=21, sigma=4.0)
    expected = 3.0 * gaussian_kernel(21, 4.0, dtype=torch.float64)
    torch.testing.assert_close(blurred[0, 0, 10:31, 10:31], expected)
    assert blurred[0, 1].abs().max().item() == 0


def test_blur_parameters_scale_with_resolution():
    assert blur_parameters(256, 384) == (99, 10.0)
    size, sigma = blur_parameters(512, 768)
    assert (size, sigma) == (197, 20.0)
    size, sigma = blur_parameters(480, 832)  # Wan 480p
    assert size % 2 == 1 and sigma == pytest.approx(10 * np.sqrt(832 * 480 / (384 * 256)))
    assert (size - 1) / 2 == pytest.approx(4.9 * sigma, abs=1)


# --------------------------------------------------------------------------------------------
# Resampling


def test_pchip_resampling_keeps_endpoints_and_monotone_tracks_monotone():
    u = np.array([0.0, 1.0, 1.2, 5.0, 5.1, 9.0, 20.0])
    track = Track(uv=np.column_stack([u, 3 * u]), visible=np.ones(7, bool))
    (out,) = resample_tracks([track], 25)
    assert out.num_frames == 25 and out.visible.all()
    np.testing.assert_allclose(out.uv[0], track.uv[0])
    np.testing.assert_allclose(out.uv[-1], track.uv[-1])
    assert np.all(np.diff(out.uv[:, 0]) >= 0) and np.all(np.diff(out.uv[:, 1]) >= 0)
    (scaled,) = resample_tracks([track], 25, source_size=(200, 100), target_size=(100, 100))
    np.testing.assert_allclose(scaled.uv, out.uv * [0.5, 1.0])


def test_resampling_visibility_follows_the_all_visible_rule():
    track = _moving_right(5, 1.0)
    track.visible[2] = False
    track.uv[2] = [1e6, -1e6]  # behind-camera garbage must not leak into the visible runs
    (out,) = resample_tracks([track], 9)  # times 0, 0.5, ..., 4
    np.testing.assert_array_equal(out.visible, [1, 1, 1, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(out.uv[out.visible], _moving_right(9, 0.5).uv[out.visible])


# --------------------------------------------------------------------------------------------
# Scene points through the camera


def test_static_camera_gives_zero_scene_point_flow():
    shot = _shot(_pan(6, 0.0))
    tracks = scene_point_tracks(shot, _wall(), (W, H))
    assert all(t.visible.all() and t.kind == "camera" for t in tracks)
    tracks = resample_tracks(tracks, 9, source_size=(W, H), target_size=(W, H))
    assert torch.count_nonzero(flow_maps(tracks, 9, H, W)) == 0


def test_panning_right_moves_scene_points_left():
    shot = _shot(_pan(6, 1.0))
    tracks = resample_tracks(scene_point_tracks(shot, _wall(), (W, H)), 6)
    maps = flow_maps(tracks, 6, H, W)
    dx = maps[1:, 0][maps[1:, 0] != 0]
    assert len(dx) > 20 and torch.all(dx < 0)
    assert maps[1:, 0].sum() < 0
    # Pure rotation: a point near the centre moves by about fx * tan(1 degree).
    centre = scene_point_tracks(shot, np.array([[0.0, 0.0, 5.0]]), (W, H))[0]
    assert centre.uv[1, 0] - centre.uv[0, 0] == pytest.approx(-80 * np.tan(np.radians(1)))


def test_points_behind_the_camera_or_outside_the_frame_are_invisible():
    shot = _shot(_pan(3, 0.0))
    behind, outside = scene_point_tracks(shot, np.array([[0, 0, -5.0], [100, 0, 5.0]]), (W, H))
    assert not behind.visible.any() and not outside.visible.any()


# --------------------------------------------------------------------------------------------
# Sparse sampling


def test_sparse_sampling_returns_one_to_eight_tracks_and_dense_returns_all():
    tracks = [_moving_right(5, 1.0 + i) for i in range(20)]
    counts = {len(sample_tracks(tracks, rng=np.random.default_rng(s))) for s in range(200)}
    assert counts == set(range(1, 9))
    assert len(sample_tracks(tracks[:3], k=8, rng=np.random.default_rng(0))) == 3
    assert sample_tracks([], rng=np.random.default_rng(0)) == []


def test_sparse_sampling_prefers_moving_tracks():
    moving = [_moving_right(5, 3.0) for _ in range(5)]
    static = [_static(5) for _ in range(5)]
    picks = [t for s in range(300)
             for t in sample_tracks(static + moving, k=2, rng=np.random.default_rng(s))]
    assert sum(t.name == "ball" for t in picks) / len(picks) > 0.95
    # Once the moving tracks are taken, static ones fill the count.
    assert len(sample_tracks(static[:2] + moving[:1], k=3, rng=np.random.default_rng(0))) == 3


# --------------------------------------------------------------------------------------------
# The whole condition


def _sequence(num_frames: int = 9) -> ShotSequence:
    uv = np.column_stack([10.5 + 4.0 * np.arange(num_frames), np.full(num_frames, 20.5)])
    subject = SubjectTrack(name="ball", uv=uv, visible=np.ones(num_frames, bool))
    positions = np.zeros((num_frames, 3))
    return ShotSequence(fps=24.0, resolution=(W, H), shots=[_shot(_pan(num_frames, 0.5),
                                                                   [subject])],
                        objects=[ObjectTrack("ball", 1, num_frames, positions)]).validate()


def test_trajectory_condition_separates_camera_and_object_maps():
    sequence = _sequence()
    (track,) = subject_tracks(sequence.shots[0])
    assert track.kind == "object" and track.name == "ball"
    cond = trajectory_condition(sequence, "s", 5, H // 2, W // 2, scene_points=_wall(),
                                mode="dense", dtype=torch.float64)
    assert set(cond) == {"camera", "object"}
    for maps in cond.values():
        assert maps.shape == (5, 2, H // 2, W // 2) and maps.dtype == torch.float64
        assert maps[0].abs().max() == 0
    # 9 source frames -> 5 model frames: 8 px per model frame at full size, 4 at half size.
    obj = cond["object"]
    assert obj[1, 0, 10, 5].item() == pytest.approx(4.0)
    assert obj[1:, 0].max().item() == pytest.approx(4.0)
    assert cond["camera"][1:, 0].sum() < 0  # panning right
    unblurred = trajectory_condition(sequence, "s", 5, H, W, blur=False)
    assert torch.count_nonzero(unblurred["camera"]) == 0


def test_trajectory_condition_sparse_is_reproducible():
    sequence = _sequence()
    points = _wall(200)
    a = trajectory_condition(sequence, "s", 5, H, W, scene_points=points, seed=3, blur=False)
    b = trajectory_condition(sequence, "s", 5, H, W, scene_points=points, seed=3, blur=False)
    dense = trajectory_condition(sequence, "s", 5, H, W, scene_points=points, mode="dense",
                                 blur=False)
    torch.testing.assert_close(a["camera"], b["camera"])
    tracked = torch.count_nonzero(a["camera"][1:, 0], dim=(1, 2))
    assert 1 <= tracked.max() <= 8
    assert torch.count_nonzero(dense["camera"][1, 0]) > 8
    with pytest.raises(ValueError, match="mode"):
        trajectory_condition(sequence, "s", 5, H, W, mode="all")
    with pytest.raises(KeyError):
        trajectory_condition(sequence, "nope", 5, H, W)
