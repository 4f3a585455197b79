"""Tests of backend.camera.plucker against a plain per-pixel numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.camera.plucker import plucker_embedding

RNG_SEED = 0


def _rotation(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula, written out: (3,) -> (3, 3)."""
    angle = np.linalg.norm(axis_angle)
    if angle < 1e-12:
        return np.eye(3)
    kx, ky, kz = axis_angle / angle
    skew = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew


def _random_cameras(
    rng: np.random.Generator, shape: tuple[int, ...], width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random K (*shape, 4) with fx != fy and an off-centre principal point; c2w (*shape, 4, 4)."""
    count = int(np.prod(shape))
    K = np.stack(
        [
            rng.uniform(0.5, 2.0, count) * width,
            rng.uniform(0.5, 2.0, count) * height,
            rng.uniform(0.2, 0.8, count) * width,
            rng.uniform(0.2, 0.8, count) * height,
        ],
        axis=-1,
    )
    c2w = np.tile(np.eye(4), (count, 1, 1))
    for n in range(count):
        c2w[n, :3, :3] = _rotation(rng.normal(size=3))
        c2w[n, :3, 3] = rng.normal(scale=3.0, size=3)
    return K.reshape(*shape, 4), c2w.reshape(*shape, 4, 4)


def _reference(K: np.ndarray, c2w: np.ndarray, height: int, width: int, order: str) -> np.ndarray:
    """One camera at a time, one pixel at a time: K (N, 4), c2w (N, 4, 4) -> (N, 6, H, W)."""
    out = np.zeros((len(K), 6, height, width))
    for n in range(len(K)):
        fx, fy, cx, cy = K[n]
        R, o = c2w[n, :3, :3], c2w[n, :3, 3]
        for row in range(height):
            for col in range(width):
                d_cam = np.array([(col + 0.5 - cx) / fx, (row + 0.5 - cy) / fy, 1.0])
                d = sum(R[:, k] * d_cam[k] for k in range(3))
                d = d / np.sqrt(d @ d)
                m = np.array(
                    [
                        o[1] * d[2] - o[2] * d[1],
                        o[2] * d[0] - o[0] * d[2],
                        o[0] * d[1] - o[1] * d[0],
                    ]
                )
                out[n, :, row, col] = np.concatenate([m, d] if order == "oxd_d" else [d, m])
    return out


def _reference_batched(K: np.ndarray, c2w: np.ndarray, height: int, width: int, order: str):
    """Flattens leading dims around :func:`_reference`: (..., N, 4) -> (..., N, 6, H, W)."""
    flat = _reference(K.reshape(-1, 4), c2w.reshape(-1, 4, 4), height, width, order)
    return flat.reshape(*K.shape[:-1], 6, height, width)


@pytest.mark.parametrize("order", ["oxd_d", "d_oxd"])
def test_matches_reference_with_three_frames_and_batch_of_three(order: str) -> None:
    # Batch == frames == height == 3: torch.cross without dim would pick the batch axis.
    height, width = 3, 5
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED), (3, 3), width, height)
    got = plucker_embedding(K, c2w, height, width, order=order)
    assert got.shape == (3, 3, 6, height, width)
    assert got.dtype == torch.float32
    want = _reference_batched(K, c2w, height, width, order)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_orders_swap_the_two_halves() -> None:
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 1), (2,), 4, 6)
    a = plucker_embedding(K, c2w, 6, 4, order="oxd_d")
    b = plucker_embedding(K, c2w, 6, 4, order="d_oxd")
    torch.testing.assert_close(a[:, :3], b[:, 3:])
    torch.testing.assert_close(a[:, 3:], b[:, :3])


def test_float64_path_is_exact() -> None:
    height, width = 4, 7
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 2), (2, 3), width, height)
    got = plucker_embedding(
        torch.from_numpy(K), torch.from_numpy(c2w), height, width, order="d_oxd"
    )
    assert got.dtype == torch.float64
    want = _reference_batched(K, c2w, height, width, "d_oxd")
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_output_follows_k_tensor_dtype() -> None:
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 3), (2,), 4, 4)
    # numpy c2w joins a float64 K; a half K still yields a half result, computed in float32.
    assert plucker_embedding(torch.from_numpy(K), c2w, 4, 4, order="oxd_d").dtype == torch.float64
    half = plucker_embedding(torch.from_numpy(K).half(), c2w, 4, 4, order="oxd_d")
    assert half.dtype == torch.float16
    full = plucker_embedding(K, c2w, 4, 4, order="oxd_d")
    torch.testing.assert_close(half.float(), full, atol=5e-3, rtol=5e-3)


def test_k_size_rescales_intrinsics() -> None:
    height, width = 6, 10
    k_width, k_height = 40, 18  # different factors per axis: 1/4 across, 1/3 down
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 4), (3,), k_width, k_height)
    got = plucker_embedding(K, c2w, height, width, order="oxd_d", k_size=(k_width, k_height))
    scaled = K * np.array([width / k_width, height / k_height, width / k_width, height / k_height])
    want = _reference(scaled, c2w, height, width, "oxd_d")
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    same = plucker_embedding(scaled, c2w, height, width, order="oxd_d", k_size=(width, height))
    torch.testing.assert_close(same, got)


def test_rescaled_rays_pass_through_points_projected_at_render_resolution() -> None:
    # A point seen at render-resolution pixel coordinates lies on the model-resolution ray whose
    # pixel centre maps onto those coordinates: checks c2w (not w2c) and the continuous scaling.
    k_width, k_height, width, height = 40, 30, 20, 15
    K = np.array([[35.0, 28.0, 21.0, 14.0]])
    c2w = np.eye(4)[None].copy()
    c2w[0, :3, :3] = _rotation(np.array([0.3, -0.5, 0.2]))
    c2w[0, :3, 3] = [1.0, -2.0, 0.5]
    rays = plucker_embedding(K, c2w, height, width, order="d_oxd", k_size=(k_width, k_height))
    fx, fy, cx, cy = K[0]
    for col, row, depth in [(0, 0, 2.0), (7, 11, 5.0), (19, 14, 0.7)]:
        u, v = (col + 0.5) * k_width / width, (row + 0.5) * k_height / height
        point_cam = np.array([(u - cx) / fx * depth, (v - cy) / fy * depth, depth])
        point = c2w[0, :3, :3] @ point_cam + c2w[0, :3, 3]
        to_point = point - c2w[0, :3, 3]
        d = rays[0, :3, row, col].double().numpy()
        np.testing.assert_allclose(d, to_point / np.linalg.norm(to_point), atol=1e-6)


def test_centre_pixel_looks_along_optical_axis() -> None:
    height, width = 5, 9  # odd, so one pixel centre sits exactly on the principal point
    K = np.array([[12.0, 20.0, width / 2, height / 2]])
    c2w = np.eye(4)[None].copy()
    c2w[0, :3, :3] = _rotation(np.array([0.0, 0.4, 0.0]))
    rays = plucker_embedding(K, c2w, height, width, order="d_oxd")
    d = rays[0, :3, height // 2, width // 2].numpy()
    np.testing.assert_allclose(d, c2w[0, :3, 2], atol=1e-6)  # the camera's +z column


def test_moment_is_orthogonal_to_direction_and_measures_distance() -> None:
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 5), (4,), 6, 5)
    rays = plucker_embedding(torch.from_numpy(K), torch.from_numpy(c2w), 5, 6, order="oxd_d")
    moment, d = rays[:, :3], rays[:, 3:]
    torch.testing.assert_close((moment * d).sum(dim=1), torch.zeros(4, 5, 6, dtype=torch.float64))
    # |o x d| for unit d is the distance from the world origin to the line.
    o = torch.from_numpy(c2w[:, :3, 3])[:, :, None, None]
    foot = o - (o * d).sum(dim=1, keepdim=True) * d
    torch.testing.assert_close(moment.norm(dim=1), foot.norm(dim=1))
    torch.testing.assert_close(d.norm(dim=1), torch.ones(4, 5, 6, dtype=torch.float64))


def test_moment_vanishes_for_camera_at_origin() -> None:
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 6), (3,), 4, 4)
    c2w[:, :3, 3] = 0.0
    rays = plucker_embedding(K, c2w, 4, 4, order="oxd_d")
    assert torch.count_nonzero(rays[:, :3]) == 0


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def cameras(draw: st.DrawFn, count: int, width: int, height: int):
    """``count`` random cameras: K (count, 4) and c2w (count, 4, 4), both float64."""
    K = np.zeros((count, 4))
    c2w = np.tile(np.eye(4), (count, 1, 1))
    for n in range(count):
        # Focal lengths from a wide to a long lens, principal points off the image included.
        K[n] = [
            draw(_floats(0.3, 3.0)) * width,
            draw(_floats(0.3, 3.0)) * height,
            draw(_floats(-0.5, 1.5)) * width,
            draw(_floats(-0.5, 1.5)) * height,
        ]
        c2w[n, :3, :3] = _rotation(np.array([draw(_floats(-np.pi, np.pi)) for _ in range(3)]))
        c2w[n, :3, 3] = [draw(_floats(-10.0, 10.0)) for _ in range(3)]
    return K, c2w


@st.composite
def camera_batches(draw: st.DrawFn):
    """(K (B, N, 4), c2w (B, N, 4, 4), height, width) with small B, N, H, W."""
    batch, frames = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    K, c2w = draw(cameras(batch * frames, width, height))
    return K.reshape(batch, frames, 4), c2w.reshape(batch, frames, 4, 4), height, width


@settings(max_examples=25, deadline=None)
@given(sample=camera_batches(), order=st.sampled_from(["oxd_d", "d_oxd"]))
def test_random_cameras_match_reference(sample, order: str) -> None:
    K, c2w, height, width = sample
    got = plucker_embedding(torch.from_numpy(K), torch.from_numpy(c2w), height, width, order=order)
    assert got.shape == (*K.shape[:-1], 6, height, width)
    want = _reference_batched(K, c2w, height, width, order)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-10)


def test_no_leading_batch_dims_beyond_frames() -> None:
    K, c2w = _random_cameras(np.random.default_rng(RNG_SEED + 7), (1,), 3, 2)
    assert plucker_embedding(K, c2w, 2, 3, order="oxd_d").shape == (1, 6, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"K": np.ones((3, 3))}, "K"),
        ({"K": np.ones(4)}, "K"),
        ({"c2w": np.ones((3, 3, 4))}, "c2w"),
        ({"c2w": np.ones((2, 4, 4))}, "c2w"),
        ({"height": 0}, "height"),
        ({"width": 2.5}, "width"),
        ({"order": "xd"}, "order"),
        ({"k_size": (8,)}, "k_size"),
        ({"k_size": (8, 0)}, "k_size"),
        ({"k_size": 8}, "k_size"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs: dict, name: str) -> None:
    args = {"K": np.ones((3, 4)), "c2w": np.tile(np.eye(4), (3, 1, 1)), "height": 2, "width": 2}
    args |= {"order": "oxd_d"} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} "):
        plucker_embedding(**args)
