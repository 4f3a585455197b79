"""Tests of backend.camera.pose12: named 12-vector layouts and rotation repair."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.transform import Rotation

from backend.camera.pose12 import (
    c2w_3x4_flat,
    orthonormalize_rotation,
    pose_to_vec12,
    vec12_to_pose,
)

# An easily read pose: R's entries are 1..9 row by row (not a rotation, which the layouts
# do not care about), t = (10, 11, 12).
NUMBERED = np.array(
    [
        [1.0, 2.0, 3.0, 10.0],
        [4.0, 5.0, 6.0, 11.0],
        [7.0, 8.0, 9.0, 12.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)

elements = st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False)
leading_shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)


@st.composite
def poses(draw: st.DrawFn) -> np.ndarray:
    """Rigid poses (..., 4, 4): a proper rotation from a random quaternion and any translation."""
    shape = draw(leading_shapes)
    count = int(np.prod(shape))
    quats = draw(hnp.arrays(np.float64, (count, 4), elements=st.floats(-1.0, 1.0)))
    quats[np.linalg.norm(quats, axis=-1) < 1e-3] = [0.0, 0.0, 0.0, 1.0]
    c2w = np.tile(np.eye(4), (count, 1, 1))
    c2w[:, :3, :3] = Rotation.from_quat(quats).as_matrix()
    c2w[:, :3, 3] = draw(hnp.arrays(np.float64, (count, 3), elements=elements))
    return c2w.reshape(*shape, 4, 4)


@settings(max_examples=25, deadline=None)
@given(c2w=poses(), layout=st.sampled_from(["rt", "tr"]))
def test_pose_round_trip(c2w: np.ndarray, layout: str) -> None:
    vec = pose_to_vec12(c2w, layout=layout)
    assert vec.shape == (*c2w.shape[:-2], 12)
    np.testing.assert_array_equal(vec12_to_pose(vec, layout=layout), c2w)


@settings(max_examples=25, deadline=None)
@given(
    vec=hnp.arrays(np.float64, st.tuples(st.integers(0, 4), st.just(12)), elements=elements),
    layout=st.sampled_from(["rt", "tr"]),
)
def test_vector_round_trip_without_repair(vec: np.ndarray, layout: str) -> None:
    # Arbitrary numbers, not rotations: vec12_to_pose must store them as they are.
    c2w = vec12_to_pose(vec, layout=layout)
    np.testing.assert_array_equal(
        c2w[..., 3, :], np.broadcast_to([0.0, 0.0, 0.0, 1.0], (len(vec), 4))
    )
    np.testing.assert_array_equal(pose_to_vec12(c2w, layout=layout), vec)


def test_rt_layout_puts_rotation_first() -> None:
    vec = pose_to_vec12(NUMBERED, layout="rt")
    np.testing.assert_array_equal(vec[0:9], [1, 2, 3, 4, 5, 6, 7, 8, 9])  # R row-major
    np.testing.assert_array_equal(vec[9:12], [10, 11, 12])  # t


def test_tr_layout_puts_translation_first() -> None:
    vec = pose_to_vec12(NUMBERED, layout="tr")
    np.testing.assert_array_equal(vec[0:3], [10, 11, 12])  # t
    np.testing.assert_array_equal(vec[3:12], [1, 2, 3, 4, 5, 6, 7, 8, 9])  # R row-major


def test_c2w_3x4_flat_interleaves_rows_and_translation() -> None:
    flat = c2w_3x4_flat(np.stack([NUMBERED, 2.0 * NUMBERED]))
    np.testing.assert_array_equal(flat[0], [1, 2, 3, 10, 4, 5, 6, 11, 7, 8, 9, 12])
    np.testing.assert_array_equal(flat[1], 2.0 * flat[0])
    assert not np.array_equal(flat[0], pose_to_vec12(NUMBERED, layout="rt"))
    assert not np.array_equal(flat[0], pose_to_vec12(NUMBERED, layout="tr"))


def test_float32_is_kept() -> None:
    vec = pose_to_vec12(NUMBERED.astype(np.float32), layout="rt")
    assert vec.dtype == np.float32
    assert vec12_to_pose(vec, layout="rt").dtype == np.float32


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: pose_to_vec12(np.eye(4), layout="Rt"), "layout"),
        (lambda: vec12_to_pose(np.zeros(12), layout="trs"), "layout"),
        (lambda: pose_to_vec12(np.eye(3), layout="rt"), "c2w"),
        (lambda: vec12_to_pose(np.zeros((2, 16)), layout="rt"), "vec"),
        (lambda: c2w_3x4_flat(np.zeros((3, 4))), "c2w"),
        (lambda: orthonormalize_rotation(np.eye(4)), "R"),
    ],
)
def test_bad_inputs_name_the_argument(call, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()


@settings(max_examples=25, deadline=None)
@given(
    c2w=poses(),
    noise=hnp.arrays(np.float64, (3, 3), elements=st.floats(-0.1, 0.1)),
)
def test_orthonormalize_returns_rotations(c2w: np.ndarray, noise: np.ndarray) -> None:
    rotation = c2w[..., :3, :3]
    repaired = orthonormalize_rotation(rotation + noise)
    identity = np.broadcast_to(np.eye(3), repaired.shape)
    np.testing.assert_allclose(np.swapaxes(repaired, -1, -2) @ repaired, identity, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(repaired), 1.0, atol=1e-9)
    # An exact rotation is already the nearest one.
    np.testing.assert_allclose(orthonormalize_rotation(rotation), rotation, atol=1e-12)


def test_orthonormalize_turns_a_reflection_into_a_rotation() -> None:
    mirror = np.diag([1.0, 1.0, -1.0]) @ Rotation.from_rotvec([0.2, -0.4, 0.7]).as_matrix()
    repaired = orthonormalize_rotation(mirror)
    assert np.linalg.det(repaired) == pytest.approx(1.0)
    np.testing.assert_allclose(repaired.T @ repaired, np.eye(3), atol=1e-12)
