"""SE(3) helpers: inverses, relative poses (one shared frame across shots), scale modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from backend.camera import se3

SETTINGS = settings(deadline=None, max_examples=40)

_finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)


@st.composite
def pose_stacks(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> np.ndarray:
    """(N, 4, 4) rigid camera-to-world poses with random rotations and translations."""
    n = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rotations = Rotation.random(n, random_state=seed).as_matrix()
    translations = draw(arrays(np.float64, (n, 3), elements=_finite))
    return se3.make_pose(rotations, translations)


def _assert_rigid(c2w: np.ndarray) -> None:
    rotations = c2w[..., :3, :3]
    np.testing.assert_allclose(np.swapaxes(rotations, -1, -2) @ rotations,
                               np.broadcast_to(np.eye(3), rotations.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    np.testing.assert_array_equal(c2w[..., 3, :], np.broadcast_to([0, 0, 0, 1.0],
                                                                  c2w[..., 3, :].shape))


def test_make_pose_layout() -> None:
    rotation = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    pose = se3.make_pose(rotation, [1.0, 2.0, 3.0])
    assert pose.shape == (4, 4)
    np.testing.assert_array_equal(pose[:3, :3], rotation)
    np.testing.assert_array_equal(pose[:3, 3], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(pose[3], [0, 0, 0, 1])
    # Broadcasting: one rotation, many translations.
    assert se3.make_pose(rotation, np.zeros((5, 3))).shape == (5, 4, 4)


@SETTINGS
@given(pose_stacks())
def test_inverse_is_the_inverse(c2w: np.ndarray) -> None:
    inv = se3.inverse(c2w)
    identity = np.broadcast_to(np.eye(4), c2w.shape)
    np.testing.assert_allclose(inv @ c2w, identity, atol=1e-9)
    np.testing.assert_allclose(c2w @ inv, identity, atol=1e-9)
    np.testing.assert_allclose(inv, np.linalg.inv(c2w), atol=1e-9)
    _assert_rigid(inv)


def test_inverse_of_a_known_pose() -> None:
    # Camera at (1, 2, 3), turned 90 degrees about z: the world origin seen from it.
    c2w = se3.make_pose(Rotation.from_euler("z", 90, degrees=True).as_matrix(), [1.0, 2.0, 3.0])
    w2c = se3.inverse(c2w)
    np.testing.assert_allclose(w2c[:3, :3], c2w[:3, :3].T)
    np.testing.assert_allclose(w2c @ [1.0, 2.0, 3.0, 1.0], [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(w2c @ [0, 0, 0, 1.0], [-2.0, 1.0, -3.0, 1.0], atol=1e-12)


def test_inverse_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="pose"):
        se3.inverse(np.eye(3))
    with pytest.raises(ValueError, match="c2w"):
        se3.relative_to_first(np.zeros((2, 3, 4)))


@SETTINGS
@given(pose_stacks(min_size=1))
def test_relative_to_first(c2w: np.ndarray) -> None:
    rel = se3.relative_to_first(c2w)
    assert rel.shape == c2w.shape
    np.testing.assert_allclose(rel[0], np.eye(4), atol=1e-9)
    _assert_rigid(rel)
    # Relative motion between any two frames is unchanged by re-basing.
    for i in range(len(c2w)):
        for j in range(len(c2w)):
            np.testing.assert_allclose(se3.inverse(rel[i]) @ rel[j],
                                       se3.inverse(c2w[i]) @ c2w[j], atol=1e-8)
    # And it is inv(c2w[0]) @ c2w[i], not c2w[i] @ inv(c2w[0]).
    np.testing.assert_allclose(rel, np.linalg.inv(c2w[0]) @ c2w, atol=1e-8)


def test_relative_to_first_order_matters() -> None:
    """A camera that turns and then moves forward: the relative centre is along its first +z."""
    first = se3.make_pose(Rotation.from_euler("y", 90, degrees=True).as_matrix(), [5.0, 0, 0])
    # One metre along the first camera's own +z (forward) axis.
    second = first.copy()
    second[:3, 3] += first[:3, 2]
    rel = se3.relative_to_first(np.stack([first, second]))
    np.testing.assert_allclose(rel[1][:3, 3], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rel[1][:3, :3], np.eye(3), atol=1e-12)


@SETTINGS
@given(pose_stacks(min_size=1, max_size=5), pose_stacks(min_size=1, max_size=5),
       pose_stacks(min_size=1, max_size=5))
def test_relative_to_first_shot_shares_one_frame(a: np.ndarray, b: np.ndarray,
                                                 c: np.ndarray) -> None:
    shots = [a, b, c]
    rel = se3.relative_to_first_shot(shots)
    assert [r.shape for r in rel] == [s.shape for s in shots]
    np.testing.assert_allclose(rel[0][0], np.eye(4), atol=1e-9)
    origin = np.linalg.inv(a[0])
    for r, s in zip(rel, shots, strict=True):
        np.testing.assert_allclose(r, origin @ s, atol=1e-8)
    # Cuts keep their spatial relation: the pose of shot b's first frame seen from shot a's last.
    np.testing.assert_allclose(se3.inverse(rel[0][-1]) @ rel[1][0],
                               se3.inverse(a[-1]) @ b[0], atol=1e-8)


def test_relative_to_first_shot_does_not_rebase_each_shot() -> None:
    a = se3.make_pose(np.eye(3), [[0, 0, 0], [1, 0, 0]])
    b = se3.make_pose(np.eye(3), [[10, 0, 0], [11, 0, 0]])
    rel = se3.relative_to_first_shot([a, b])
    np.testing.assert_allclose(rel[1][:, :3, 3], [[10, 0, 0], [11, 0, 0]])
    assert not np.allclose(rel[1][0], np.eye(4))
    with pytest.raises(ValueError, match="at least one shot"):
        se3.relative_to_first_shot([])


@SETTINGS
@given(pose_stacks())
def test_scale_none_changes_nothing(c2w: np.ndarray) -> None:
    scaled, scale = se3.normalize_scale(c2w, "none")
    assert scale == 1.0
    np.testing.assert_array_equal(scaled, c2w)
    assert scaled is not c2w


@SETTINGS
@given(pose_stacks(min_size=2))
def test_scale_max_norm(c2w: np.ndarray) -> None:
    norms = np.linalg.norm(c2w[:, :3, 3], axis=-1)
    scaled, scale = se3.normalize_scale(c2w, "max_norm")
    np.testing.assert_array_equal(scaled[:, :3, :3], c2w[:, :3, :3])
    np.testing.assert_array_equal(scaled[:, 3], c2w[:, 3])
    if norms.max() > 1e-8:
        assert scale == pytest.approx(norms.max())
        assert np.linalg.norm(scaled[:, :3, 3], axis=-1).max() == pytest.approx(1.0)
        # Directions are kept; the scale undoes it.
        np.testing.assert_allclose(scaled[:, :3, 3] * scale, c2w[:, :3, 3], atol=1e-9)
    else:
        assert scale == 1.0


def test_scale_max_norm_known_and_static() -> None:
    c2w = se3.make_pose(np.eye(3), [[0, 0, 0], [3, 4, 0], [0, 0, 2]])
    scaled, scale = se3.normalize_scale(c2w, "max_norm")
    assert scale == pytest.approx(5.0)
    np.testing.assert_allclose(scaled[:, :3, 3], [[0, 0, 0], [0.6, 0.8, 0], [0, 0, 0.4]])

    rotations = Rotation.from_euler("x", [[0], [10], [20]], degrees=True).as_matrix()
    static = se3.make_pose(rotations, np.zeros((3, 3)))
    scaled, scale = se3.normalize_scale(static, "max_norm")
    assert scale == 1.0
    np.testing.assert_array_equal(scaled, static)
    assert np.all(np.isfinite(scaled))


@SETTINGS
@given(pose_stacks(), arrays(np.float64, (3,), elements=_finite))
def test_scale_first_distance(c2w: np.ndarray, point: np.ndarray) -> None:
    distance = np.linalg.norm(c2w[0, :3, 3] - point)
    if distance <= 1e-6:
        return
    scaled, scale = se3.normalize_scale(c2w, "first_distance", reference_point=point)
    assert scale == pytest.approx(distance)
    # t_scaled = t / scale, so the first camera's distance to the (equally scaled) point is 1.
    assert np.linalg.norm(scaled[0, :3, 3] - point / scale) == pytest.approx(1.0)
    np.testing.assert_array_equal(scaled[:, :3, :3], c2w[:, :3, :3])
    np.testing.assert_allclose(scaled[:, :3, 3] * scale, c2w[:, :3, 3], atol=1e-9)


def test_scale_first_distance_known() -> None:
    c2w = se3.make_pose(np.eye(3), [[0, 0, -4], [0, 0, -2]])
    scaled, scale = se3.normalize_scale(c2w, "first_distance", reference_point=[0.0, 0.0, 0.0])
    assert scale == pytest.approx(4.0)
    np.testing.assert_allclose(scaled[:, :3, 3], [[0, 0, -1], [0, 0, -0.5]])


def test_scale_errors() -> None:
    c2w = se3.make_pose(np.eye(3), [[1.0, 0, 0]])
    with pytest.raises(ValueError, match="reference_point"):
        se3.normalize_scale(c2w, "first_distance")
    with pytest.raises(ValueError, match="reference_point"):
        se3.normalize_scale(c2w, "first_distance", reference_point=[1.0, 2.0])
    with pytest.raises(ValueError, match="reference_point"):
        se3.normalize_scale(c2w, "first_distance", reference_point=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="reference_point"):
        se3.normalize_scale(c2w, "max_norm", reference_point=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="mode"):
        se3.normalize_scale(c2w, "unit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        se3.normalize_scale(c2w, "MAX_NORM")  # type: ignore[arg-type]


def test_rotation_angle_known() -> None:
    a = Rotation.from_euler("z", 10, degrees=True).as_matrix()
    b = Rotation.from_euler("z", 55, degrees=True).as_matrix()
    assert float(se3.rotation_angle(a, b)) == pytest.approx(math.radians(45))
    assert float(se3.rotation_angle(a, a)) == pytest.approx(0.0, abs=1e-7)
    c = Rotation.from_rotvec([0.0, 0.0, math.pi]).as_matrix()
    assert float(se3.rotation_angle(np.eye(3), c)) == pytest.approx(math.pi)
    stacked = se3.rotation_angle(np.stack([np.eye(3)] * 2), np.stack([a, b]))
    assert stacked.shape == (2,)
    np.testing.assert_allclose(stacked, np.radians([10, 55]))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.0, math.pi - 1e-3))
def test_rotation_angle_property(seed: int, angle: float) -> None:
    """rotation_angle(R, R @ exp(angle * axis)) == angle for any R and axis."""
    rng = np.random.default_rng(seed)
    base = Rotation.random(random_state=seed).as_matrix()
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    turned = base @ Rotation.from_rotvec(angle * axis).as_matrix()
    assert float(se3.rotation_angle(base, turned)) == pytest.approx(angle, abs=1e-7)
    assert float(se3.rotation_angle(turned, base)) == pytest.approx(angle, abs=1e-7)
