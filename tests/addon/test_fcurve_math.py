"""blender_addon.fcurve_math on plain arrays: keyframe evaluation, root finding, composition.

The end-to-end references (``FCurve.evaluate`` bit for bit, ``matrix_world`` after
``frame_set``) are in ``test_sampling.py``; here the pure functions are driven directly, against
closed forms, Blender's scalar ``solve_cubic`` transcription and ``mathutils`` (Blender's own
rotation and matrix code).
"""

from __future__ import annotations

import bpy  # noqa: F401  (mathutils is importable once bpy is)
import mathutils
import numpy as np
import pytest

from blender_addon import fcurve_math

LINEAR, BEZIER = 1, 2
EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def keys(points, ipo, handles=None, constant=True) -> fcurve_math.Keys:
    """Keys from (K, 2) points; handles ((K, 2) left, (K, 2) right) default to the key itself."""
    co = np.asarray(points, np.float32)
    left, right = (co, co) if handles is None else (np.asarray(h, np.float32) for h in handles)
    result = fcurve_math.keys_from_points(co, left, right, np.asarray(ipo, np.int32), constant)
    assert result is not None
    return result


def third_handles(points) -> tuple[np.ndarray, np.ndarray]:
    """Bezier handles a third of the way to the neighbouring keys, on the straight line."""
    co = np.asarray(points, np.float64)
    prev, nxt = np.roll(co, 1, axis=0), np.roll(co, -1, axis=0)
    left, right = co + (prev - co) / 3, co + (nxt - co) / 3
    left[0], right[-1] = co[0] - (right[0] - co[0]), co[-1] + (co[-1] - left[-1])
    return left, right


# ------------------------------------------------------------------------------------------------
# Keyframes


def test_keys_from_points_rejects_what_it_cannot_reproduce():
    co = np.array([[0, 0], [10, 1]], np.float32)
    assert fcurve_math.keys_from_points(co[:0], co[:0], co[:0], np.zeros(0, np.int32), True) is None
    easing = np.array([LINEAR, 3], np.int32)  # SINE
    assert fcurve_math.keys_from_points(co, co, co, easing, True) is None
    close = np.array([[0, 0], [5e-4, 1]], np.float32)  # within twice the 1e-4 snap
    assert fcurve_math.keys_from_points(close, close, close, np.ones(2, np.int32), True) is None
    got = fcurve_math.keys_from_points(co, co - 1, co + 1, np.ones(2, np.int32), False)
    np.testing.assert_array_equal(got.x, [0, 10])
    np.testing.assert_array_equal(got.left_y, [-1, 0])
    assert got.constant is False


@pytest.mark.parametrize("constant", [True, False])
def test_linear_keys_and_extrapolation(constant):
    points = [(0, 0), (10, 10), (20, 4)]
    t = np.linspace(-10, 30, 81, dtype=np.float32)
    got = fcurve_math.evaluate_keys([keys(points, [LINEAR] * 3, constant=constant)], t)[0]
    expected = np.interp(t, *np.transpose(points))
    if not constant:  # the end segments' slopes go on
        expected = np.where(t < 0, t, np.where(t > 20, 4 - 0.6 * (t - 20), expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_constant_keys_hold_their_value_until_the_next_key():
    t = np.array([-1, 0, 3, 9.99, 10, 15, 20, 25], np.float32)
    got = fcurve_math.evaluate_keys([keys([(0, 1), (10, 5), (20, -2)], [0, 0, 0])], t)[0]
    np.testing.assert_array_equal(got, [1, 1, 1, 1, 5, 5, -2, -2])


def test_bezier_with_handles_on_the_line_is_linear_and_snaps_onto_keys():
    points = [(0, 0), (12, 6), (30, -3)]
    curve = keys(points, [BEZIER] * 3, third_handles(points), constant=False)
    t = np.linspace(-5, 35, 161, dtype=np.float32)
    got = fcurve_math.evaluate_keys([curve], t)[0]
    expected = np.interp(t, *np.transpose(points))
    expected = np.where(t < 0, 0.5 * t, np.where(t > 30, -3 - 0.5 * (t - 30), expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)
    near = np.array([12 - 5e-5, 12 + 9e-5, 30 - 5e-5], np.float32)  # BEZT_BINARYSEARCH_THRESH
    np.testing.assert_array_equal(fcurve_math.evaluate_keys([curve], near)[0], [6, 6, -3])


def test_curves_with_the_same_key_times_share_roots_without_changing_values():
    rng = np.random.default_rng(3)
    x = np.array([0, 7, 19, 26], np.float32)
    curves = []
    for _ in range(3):
        points = np.stack([x, rng.normal(size=4)], -1)
        left, right = third_handles(points)
        left[:, 1] += rng.normal(size=4)
        right[:, 1] += rng.normal(size=4)
        curves.append(keys(points, [BEZIER, LINEAR, BEZIER, BEZIER], (left, right)))
    t = np.sort(rng.uniform(-3, 30, 200)).astype(np.float32)
    together = fcurve_math.evaluate_keys(curves, t)
    alone = np.concatenate([fcurve_math.evaluate_keys([curve], t) for curve in curves])
    np.testing.assert_array_equal(together, alone)


def test_evaluate_curves_takes_any_time_order_and_values_already_evaluated():
    points = [(0, 0), (10, 3), (20, -1)]
    curve = keys(points, [BEZIER] * 3, third_handles(points))
    t = np.array([15, -2, 3.5, 20, 10, 7.25], np.float32)
    evaluated = np.arange(t.size, dtype=np.float32)
    got = fcurve_math.evaluate_curves([curve, evaluated], t)
    np.testing.assert_array_equal(got[1], evaluated)
    order = np.argsort(t)
    np.testing.assert_array_equal(got[0, order], fcurve_math.evaluate_keys([curve], t[order])[0])


def test_eval_times_remaps_in_float32():
    got = fcurve_math.eval_times(np.arange(1, 6), 3, 7)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.arange(1, 6, dtype=np.float32)
                                  * (np.float32(3) / np.float32(7)))


# ------------------------------------------------------------------------------------------------
# Root finding


def test_solve_cubic_reports_the_roots_in_range():
    # (u - 0.25)(u - 0.5)(u - 2): the third root is out of [0, 1]
    assert sorted(fcurve_math.solve_cubic(-0.25, 1.625, -2.75, 1.0)) == pytest.approx([0.25, 0.5])
    # (u - 0.3)(u - 0.9), not cubic
    assert sorted(fcurve_math.solve_cubic(0.27, -1.2, 1.0, 0.0)) == pytest.approx([0.3, 0.9])
    assert fcurve_math.solve_cubic(-1.0, 2.0, 0.0, 0.0) == [0.5]
    assert fcurve_math.solve_cubic(0.0, 0.0, 0.0, 0.0) == [0.0]
    assert fcurve_math.solve_cubic(1.0, 0.0, 0.0, 0.0) == []
    assert fcurve_math.solve_cubic(-3.0, 1.0, 0.0, 0.0) == []  # u = 3


def segment_samples(rng, segments: int, per_segment: int):
    """Random Bezier x cubics (handles inside the segment) at random times: (c0, cubics)."""
    x1 = rng.uniform(0.5, 300, segments).astype(np.float32)
    right_x = (x1 * rng.uniform(0, 1, segments)).astype(np.float32)
    left_x = (x1 * rng.uniform(0, 1, segments)).astype(np.float32)
    cubics = fcurve_math._segment_cubics(np.zeros_like(x1), right_x, left_x, x1)
    t = (x1[:, None] * rng.uniform(0, 1, (segments, per_segment))).astype(np.float32)
    return -t.reshape(-1).astype(np.float64), np.repeat(cubics, per_segment, axis=1)


def ill_conditioned_samples():
    """Auto handles a third of the way: the x cubic is linear up to float32 noise (see
    test_sampling's ``test_ill_conditioned_bezier_roots_round_like_blender``)."""
    c0, cubics = [], []
    for start, end, frame in ((712, 768, 761), (1857, 1969, 1955), (778, 834, 827),
                              (632, 688, 681)):
        x0, x1 = np.float32(start), np.float32(end)
        third = (x1 - x0) / np.float32(3)
        cubic = fcurve_math._segment_cubics(np.array([x0]), np.array([x0 + third]),
                                            np.array([x1 - third]), np.array([x1]))
        for t in (frame - 1, frame, frame + 1):
            c0.append(float(x0 - np.float32(t)))
            cubics.append(cubic)
    return np.array(c0), np.concatenate(cubics, axis=1)


@pytest.mark.parametrize("samples", ["random", "ill-conditioned"])
def test_vectorised_roots_round_like_the_scalar_solve_cubic(samples):
    """The numpy root finding with its float32-boundary recomputation gives, bit for bit, the
    first root of Blender's scalar solve_cubic (C library exp, log, acos and cos)."""
    if samples == "random":
        c0, cubics = segment_samples(np.random.default_rng(11), 400, 50)
    else:
        c0, cubics = ill_conditioned_samples()
    u, found = fcurve_math._first_root(c0, cubics)
    c1, c2, c3 = cubics[:3]
    for i in range(c0.size):
        exact = fcurve_math.solve_cubic(c0[i], c1[i], c2[i], c3[i])
        assert found[i] == bool(exact), i
        assert u[i] == np.float32(exact[0] if exact else 0.0), i


# ------------------------------------------------------------------------------------------------
# Composition


@pytest.mark.parametrize("order", EULER_ORDERS)
def test_euler_rotation_matches_mathutils(order):
    euler = np.random.default_rng(5).uniform(-4, 4, (3, 6)).astype(np.float32)
    got = fcurve_math.euler_rotation(euler, order)
    assert got.shape == (3, 3, 6)
    for n in range(6):
        expected = np.array(mathutils.Euler(euler[:, n].tolist(), order).to_matrix())
        np.testing.assert_allclose(got[:, :, n], expected, atol=1e-6)


def test_quaternion_rotation_normalises_first_like_mathutils():
    quaternions = np.array([[2.0, 0.4, -0.6, 0.2], [0, 0, 0, 0], [0.3, -1.5, 0.7, 2.0],
                            [1, 0, 0, 0]], np.float32).T
    got = fcurve_math.quaternion_rotation(quaternions[:, :, None])  # (4, n, 1) -> (3, 3, n, 1)
    assert got.shape == (3, 3, 4, 1)
    for n in range(4):
        q = mathutils.Quaternion(quaternions[:, n].tolist()).normalized()
        np.testing.assert_allclose(got[:, :, n, 0], np.array(q.to_matrix()), atol=1e-6)
    np.testing.assert_array_equal(got[:, :, 1, 0], np.diag([1.0, -1.0, -1.0]))  # (0, 1, 0, 0)


def test_axis_angle_rotation_matches_mathutils_and_a_zero_axis_is_identity():
    axis_angles = np.array([[0.5, 0, 0, 2], [2, 0, 0, 0], [-1.2, 1, 2, -0.5], [3, 1e-20, 0, 0]],
                           np.float32).T
    got = fcurve_math.axis_angle_rotation(axis_angles)
    for n in range(4):
        angle, *axis = axis_angles[:, n].tolist()
        expected = (np.eye(3) if n in (1, 3)
                    else np.array(mathutils.Matrix.Rotation(angle, 3, axis)))
        np.testing.assert_allclose(got[:, :, n], expected, atol=1e-6)


def transform_channels(rng, n: int, targets=(), curves=()) -> fcurve_math.Channels:
    """Random current values of n objects' transform channels, full float ranges."""
    static = {name: rng.normal(size=(n, size)).astype(np.float32)
              for name, size in fcurve_math.TRANSFORM_CHANNELS.items()}
    for name in ("scale", "delta_scale"):
        static[name] = rng.uniform(0.5, 2, (n, 3)).astype(np.float32)
    big = np.finfo(np.float32).max
    ranges = {name: (np.float32(-big), np.float32(big)) for name in static}
    return fcurve_math.Channels(static, ranges, list(targets), list(curves))


def reference_local(ch: dict[str, np.ndarray], n: int, m: int, mode: str) -> np.ndarray:
    """``T @ Rdelta @ R @ S`` with mathutils for object n at time m."""
    def value(name):
        array = ch[name][:, n]
        return array[:, min(m, array.shape[1] - 1)].tolist()

    if mode == "QUATERNION":
        rotation = (mathutils.Quaternion(value("delta_rotation_quaternion")).normalized()
                    @ mathutils.Quaternion(value("rotation_quaternion")).normalized()).to_matrix()
    elif mode == "AXIS_ANGLE":
        angle, *axis = value("rotation_axis_angle")
        rotation = mathutils.Matrix.Rotation(angle, 3, axis)
    else:
        rotation = (mathutils.Euler(value("delta_rotation_euler"), mode).to_matrix()
                    @ mathutils.Euler(value("rotation_euler"), mode).to_matrix())
    location = np.add(value("location"), value("delta_location"))
    scale = np.multiply(value("scale"), value("delta_scale"))
    return np.array(mathutils.Matrix.Translation(location) @ rotation.to_4x4()
                    @ mathutils.Matrix.Diagonal((*scale, 1.0)))


def test_local_matrices_compose_like_blender_with_animated_and_clamped_channels():
    rng = np.random.default_rng(2)
    modes = ["QUATERNION", "QUATERNION", "AXIS_ANGLE", "XYZ", "ZYX", "ZYX"]
    t = np.linspace(0, 20, 9, dtype=np.float32)
    animated = keys([(0, -1), (20, 3)], [LINEAR, LINEAR])
    targets = [("location", 0, 2), ("rotation_quaternion", 1, 0), ("rotation_euler", 4, 1),
               ("scale", 5, 0)]
    read = transform_channels(rng, len(modes), targets, [animated] * len(targets))
    read.ranges["scale"] = (np.float32(0.25), read.ranges["scale"][1])  # clamps -1 .. 0.25
    got = fcurve_math.local_matrices(read, modes, t)
    assert got.shape == (len(modes), t.size, 4, 4)
    ch = fcurve_math.channel_arrays(read, t)
    assert ch["location"].shape == (3, len(modes), t.size)
    assert ch["delta_location"].shape == (3, len(modes), 1)  # static
    assert ch["scale"][0, 5].min() == np.float32(0.25)
    for n, mode in enumerate(modes):
        for m in range(t.size):
            np.testing.assert_allclose(got[n, m], reference_local(ch, n, m, mode), atol=1e-5,
                                       err_msg=f"{mode} object {n} time {m}")


def test_world_matrices_compose_the_parent_chain_across_chunks():
    rng = np.random.default_rng(4)
    t = np.arange(5, dtype=np.float32)
    spin = keys([(0, 0), (4, 2)], [LINEAR, LINEAR])
    roots = fcurve_math.ObjectChunk(
        pointers=[1, 2], parents=[None, None], parent_inverse=np.tile(np.eye(4), (2, 1, 1)),
        modes=["XYZ", "XYZ"],
        channels=transform_channels(rng, 2, [("rotation_euler", 0, 2)], [spin]))
    inverse = np.array([np.diag([2.0, 1.0, 0.5, 1.0]), np.eye(4)])
    inverse[0, :3, 3] = (1.0, -2.0, 0.5)
    children = [fcurve_math.ObjectChunk(
        pointers=[10 + i], parents=[1 + i], parent_inverse=inverse[i:i + 1], modes=["QUATERNION"],
        channels=transform_channels(rng, 1, [("location", 0, 0)], [spin])) for i in range(2)]
    world = fcurve_math.world_matrices([[roots], children], t, workers=2)
    assert set(world) == {1, 2, 10, 11} and world[10].shape == (t.size, 4, 4)
    root_local = fcurve_math.local_matrices(roots.channels, roots.modes, t)
    np.testing.assert_array_equal(world[1], root_local[0])
    for i, child in enumerate(children):
        local = fcurve_math.local_matrices(child.channels, child.modes, t)[0]
        np.testing.assert_allclose(world[10 + i], root_local[i] @ inverse[i] @ local, atol=1e-12)


def test_chunk_size_spreads_objects_over_the_workers_and_bounds_the_samples():
    assert fcurve_math.chunk_size(300, 2000, workers=2) == 75  # 4 chunks for 2 workers
    assert fcurve_math.chunk_size(300, 1 << 16, workers=2) == 8  # 2**19 samples at most
    assert fcurve_math.chunk_size(1, 10**9, workers=4) == 1
    assert 1 <= fcurve_math.pool_size() <= 4
