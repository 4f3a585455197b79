"""Per-frame samples -> editable keyframes without ``bpy``: rotation continuity, Bezier reduction.

This module is imported inside Blender (by ``scene_io.plan_import``) and by plain tests, so it uses
only numpy and the standard library.

Rotations
    Quaternions are ``(w, x, y, z)``, as ``Object.rotation_quaternion``. Euler angles are Blender's
    ``XYZ`` order: ``R = Rz(z) @ Ry(y) @ Rx(x)``, as ``Object.rotation_euler``. Key values must not
    flip from one frame to the next, or the curve between two keys spins the long way round:
    quaternions keep the sign of the previous frame (:func:`make_quaternions_continuous`), Euler
    triples take the 2π-equivalent or flipped triple closest to the previous frame
    (:func:`make_eulers_compatible`, what ``mathutils.Euler.make_compatible`` and
    ``Matrix.to_euler(order, compatible)`` do).

Bezier keys
    :func:`reduce_to_bezier` keeps a few of the sampled frames as keys. Every key gets the slope the
    samples have there (4th-order finite differences), and handles one third of the way to the
    neighbouring keys along that slope: the two handles of a key are collinear with it (ALIGNED) and
    the frame coordinate of a segment is linear in the Bezier parameter. A key is added at the worst
    frame of a segment until the curve is within the tolerance at every sampled frame. The error
    check evaluates the curve as Blender's ``fcurve_eval_keyframes_interpolate`` does, from the
    float32 values Blender stores, so what was checked is what Blender plays back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ErrorFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``error(samples, curve) -> (N,)``: the distance between sampled rows and curve rows (N, C)."""

# Below this cos(y) an XYZ Euler triple is in gimbal lock (Blender: 16 * FLT_EPSILON).
_GIMBAL_EPSILON = 16.0 * float(np.finfo(np.float32).eps)


# --------------------------------------------------------------------------------------------
# Rotations


def quaternions_from_matrices(rotations: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(w, x, y, z)`` of rotation matrices, sign-continuous over frames.

    rotations: (N, 3, 3) -> (N, 4). The first quaternion has ``w >= 0``.
    """
    m = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # Four candidate forms; each frame uses the one with the largest (best conditioned) pivot.
    candidates = np.stack([
        np.stack([1.0 + trace, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0],
                  m[:, 1, 0] - m[:, 0, 1]], axis=-1),
        np.stack([m[:, 2, 1] - m[:, 1, 2], 1.0 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                  m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], axis=-1),
        np.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0],
                  1.0 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], m[:, 1, 2] + m[:, 2, 1]], axis=-1),
        np.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                  1.0 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], axis=-1),
    ], axis=1)  # (N, 4 forms, 4)
    pivots = np.stack([1.0 + trace, 1.0 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
                       1.0 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
                       1.0 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], axis=-1)
    best = np.argmax(pivots, axis=-1)
    quats = candidates[np.arange(len(m)), best]
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    if len(quats) and quats[0, 0] < 0:
        quats = -quats
    return make_quaternions_continuous(quats)


def make_quaternions_continuous(quaternions: np.ndarray) -> np.ndarray:
    """Flip signs so that consecutive quaternions have a non-negative dot product (no flips).

    quaternions: (N, 4) -> (N, 4); ``q`` and ``-q`` are the same rotation, so nothing else changes.
    """
    q = np.array(quaternions, dtype=np.float64).reshape(-1, 4)
    if len(q) < 2:
        return q
    steps = np.where(np.einsum("ij,ij->i", q[1:], q[:-1]) < 0.0, -1.0, 1.0)
    # Flipping q[i-1] flips the sign of its dot with q[i]: the signs accumulate.
    signs = np.concatenate([[1.0], np.cumprod(steps)])
    return q * signs[:, None]


def matrices_from_quaternions(quaternions: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions ``(w, x, y, z)``, normalised first as Blender does.

    quaternions: (N, 4) -> (N, 3, 3).
    """
    q = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
    w, x, y, z = (q / np.linalg.norm(q, axis=-1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


def quaternions_from_eulers(eulers: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(w, x, y, z)`` of XYZ Euler triples (``qz qy qx``): (N, 3) -> (N, 4)."""
    e = np.asarray(eulers, dtype=np.float64).reshape(-1, 3)
    cx, cy, cz = np.cos(0.5 * e).T
    sx, sy, sz = np.sin(0.5 * e).T
    return np.stack([
        cz * cy * cx + sz * sy * sx,
        cz * cy * sx - sz * sy * cx,
        cz * sy * cx + sz * cy * sx,
        sz * cy * cx - cz * sy * sx,
    ], axis=-1)


def matrices_from_eulers(eulers: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Rz @ Ry @ Rx`` of XYZ Euler triples. (N, 3) -> (N, 3, 3)."""
    return matrices_from_quaternions(quaternions_from_eulers(eulers))


def _euler_candidates(rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two XYZ Euler triples of each rotation (equal in gimbal lock). (N,3,3) -> 2 x (N, 3)."""
    m = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    cy = np.hypot(m[:, 0, 0], m[:, 1, 0])
    free = cy > _GIMBAL_EPSILON
    first = np.stack([np.arctan2(m[:, 2, 1], m[:, 2, 2]), np.arctan2(-m[:, 2, 0], cy),
                      np.arctan2(m[:, 1, 0], m[:, 0, 0])], axis=-1)
    second = np.stack([np.arctan2(-m[:, 2, 1], -m[:, 2, 2]), np.arctan2(-m[:, 2, 0], -cy),
                       np.arctan2(-m[:, 1, 0], -m[:, 0, 0])], axis=-1)
    # Gimbal lock: only x + z (or x - z) is defined; Blender puts it all on x.
    locked = np.stack([np.arctan2(-m[:, 1, 2], m[:, 1, 1]), np.arctan2(-m[:, 2, 0], cy),
                       np.zeros(len(m))], axis=-1)
    first = np.where(free[:, None], first, locked)
    second = np.where(free[:, None], second, locked)
    return first, second


def _wrap_towards(angles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``angles`` plus the multiples of 2π that bring each within π of ``reference``."""
    return angles - 2.0 * np.pi * np.round((angles - reference) / (2.0 * np.pi))


def _closest_triple(first: np.ndarray, second: np.ndarray, previous: np.ndarray) -> np.ndarray:
    a, b = _wrap_towards(first, previous), _wrap_towards(second, previous)
    return a if np.abs(a - previous).sum() <= np.abs(b - previous).sum() else b


def make_eulers_compatible(eulers: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Each XYZ triple replaced by its equivalent closest to the triple before it (no flips).

    eulers: (N, 3) radians -> (N, 3). The equivalents of ``(x, y, z)`` are its 2π shifts and those
    of the flipped triple ``(x + π, π - y, z + π)``; the first frame is matched to ``previous``
    (3,) when given and kept as it is otherwise.
    """
    e = np.asarray(eulers, dtype=np.float64).reshape(-1, 3)
    flipped = e + np.array([np.pi, 0.0, np.pi])
    flipped[:, 1] = np.pi - e[:, 1]
    return _chain_closest(e, flipped, previous)


def eulers_from_matrices(rotations: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """XYZ Euler triples of rotation matrices, each compatible with the frame before (no flips).

    rotations: (N, 3, 3) -> (N, 3) radians. The first frame takes the triple closest to
    ``previous`` (3,) when given, else the one with the smaller angles (as ``Matrix.to_euler``).
    """
    first, second = _euler_candidates(rotations)
    if previous is None and len(first):
        if np.abs(second[0]).sum() < np.abs(first[0]).sum():
            first[0], second[0] = second[0].copy(), first[0].copy()
        previous = first[0]
    return _chain_closest(first, second, previous)


def _chain_closest(
    first: np.ndarray, second: np.ndarray, previous: np.ndarray | None
) -> np.ndarray:
    """Per frame, the candidate triple closest to the one chosen for the frame before."""
    out = np.empty_like(first)
    for i in range(len(first)):
        if previous is None:
            out[i] = first[i]
        else:
            out[i] = _closest_triple(first[i], second[i], np.asarray(previous, dtype=np.float64))
        previous = out[i]
    return out


def quaternion_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) between unit quaternions, row by row. (N, 4), (N, 4) -> (N,).

    ``4 atan2(|a - b|, |a + b|)`` with ``b`` sign-matched to ``a``: accurate for tiny angles too,
    where ``acos`` of a dot product is not.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    b = b * np.where(np.einsum("ij,ij->i", a, b) < 0.0, -1.0, 1.0)[:, None]
    return 4.0 * np.arctan2(np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))


# --------------------------------------------------------------------------------------------
# Error measures for reduce_to_bezier: (samples (N, C), curve (N, C)) -> (N,)


def max_abs_error(samples: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Largest per-channel difference (the default: each channel within the tolerance)."""
    return np.abs(np.asarray(samples) - np.asarray(curve)).max(axis=-1)


def distance_error(samples: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Euclidean distance between rows (positions: metres or scene units)."""
    return np.linalg.norm(np.asarray(samples) - np.asarray(curve), axis=-1)


def euler_angle_error(samples: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) between XYZ Euler rows, not the per-channel difference."""
    return quaternion_angles(quaternions_from_eulers(samples), quaternions_from_eulers(curve))


def quaternion_angle_error(samples: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) between quaternion rows, normalised first as Blender does."""
    curve = np.asarray(curve, dtype=np.float64)
    samples = np.asarray(samples, dtype=np.float64)
    return quaternion_angles(samples / np.linalg.norm(samples, axis=-1, keepdims=True),
                             curve / np.linalg.norm(curve, axis=-1, keepdims=True))


# --------------------------------------------------------------------------------------------
# Bezier F-curve segments, as Blender evaluates them


@dataclass(frozen=True)
class ChannelKeys:
    """Bezier keys of one F-curve channel, as Blender stores them (float32-representable values)."""

    co: np.ndarray
    """(K, 2) ``(frame, value)`` of each key (``Keyframe.co``), frames increasing."""
    handle_left: np.ndarray
    """(K, 2) left handle of each key (``Keyframe.handle_left``), collinear with the right one."""
    handle_right: np.ndarray
    """(K, 2) right handle of each key (``Keyframe.handle_right``)."""

    @property
    def frames(self) -> np.ndarray:
        """(K,) key frames."""
        return self.co[:, 0]

    @property
    def values(self) -> np.ndarray:
        """(K,) key values."""
        return self.co[:, 1]

    def __len__(self) -> int:
        return len(self.co)


def _f32(array: np.ndarray) -> np.ndarray:
    """Round to the float32 values Blender stores, kept as float64."""
    return np.asarray(array, dtype=np.float32).astype(np.float64)


def _correct_bezpart(p0, p1, p2, p3):
    """Shorten handles that reach past each other in time (``BKE_fcurve_correct_bezpart``)."""
    h1 = p0 - p1
    h2 = p3 - p2
    length = p3[..., 0] - p0[..., 0]
    reach = np.abs(h1[..., 0]) + np.abs(h2[..., 0])
    scale = np.where(reach > length, length / np.where(reach > 0, reach, 1.0), 1.0)[..., None]
    return p0 - scale * h1, p3 - scale * h2


def evaluate_segments(p0, p1, p2, p3, frames: np.ndarray) -> np.ndarray:
    """Value of Bezier segments at ``frames`` (broadcast), solving ``x(t) = frame`` for ``t``.

    p0..p3: (..., 2) ``(frame, value)`` control points: key, its right handle, the next key's left
    handle, the next key. Returns (...,) float64.
    """
    p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    p1, p2 = _correct_bezpart(p0, p1, p2, p3)
    frames = np.asarray(frames, dtype=np.float64)

    def bezier(t, i):
        s = 1.0 - t
        return (s * s * s * p0[..., i] + 3 * s * s * t * p1[..., i] + 3 * s * t * t * p2[..., i]
                + t * t * t * p3[..., i])

    # x(t) is monotone once the handles are corrected: bisection always converges.
    low = np.zeros(np.broadcast(frames, p0[..., 0]).shape)
    high = np.ones_like(low)
    for _ in range(52):
        mid = 0.5 * (low + high)
        before = bezier(mid, 0) < frames
        low = np.where(before, mid, low)
        high = np.where(before, high, mid)
    return bezier(0.5 * (low + high), 1)


def evaluate_keys(keys: ChannelKeys, frames: np.ndarray) -> np.ndarray:
    """An F-curve's value at ``frames`` (M,) as Blender evaluates it (constant extrapolation)."""
    frames = np.asarray(frames, dtype=np.float64)
    co = keys.co
    if len(co) == 1:
        return np.full(frames.shape, co[0, 1])
    segment = np.clip(np.searchsorted(co[:, 0], frames, side="right") - 1, 0, len(co) - 2)
    out = evaluate_segments(co[segment], keys.handle_right[segment],
                            keys.handle_left[segment + 1], co[segment + 1], frames)
    out = np.where(frames <= co[0, 0], co[0, 1], out)
    out = np.where(frames >= co[-1, 0], co[-1, 1], out)
    on_key = np.isin(frames, co[:, 0])
    return np.where(on_key, co[np.searchsorted(co[:, 0], frames).clip(0, len(co) - 1), 1], out)


def sample_slopes(frames: np.ndarray, values: np.ndarray) -> np.ndarray:
    """d(value)/d(frame) of sampled channels: (N,), (N, C) -> (N, C).

    Uniform frames (the usual case) use 4th-order finite differences, exact for cubics, so a
    linear or cubic motion needs keys at its ends only; others use ``np.gradient``.
    """
    frames = np.asarray(frames, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64).reshape(len(frames), -1)
    n = len(frames)
    if n == 1:
        return np.zeros_like(v)
    step = np.diff(frames)
    if n < 5 or not np.allclose(step, step[0]):
        return np.gradient(v, frames, axis=0, edge_order=2 if n >= 3 else 1)
    h = step[0]
    slopes = np.empty_like(v)
    slopes[2:-2] = (v[:-4] - 8 * v[1:-3] + 8 * v[3:-1] - v[4:]) / (12 * h)
    slopes[0] = (-25 * v[0] + 48 * v[1] - 36 * v[2] + 16 * v[3] - 3 * v[4]) / (12 * h)
    slopes[1] = (-3 * v[0] - 10 * v[1] + 18 * v[2] - 6 * v[3] + v[4]) / (12 * h)
    slopes[-1] = (25 * v[-1] - 48 * v[-2] + 36 * v[-3] - 16 * v[-4] + 3 * v[-5]) / (12 * h)
    slopes[-2] = (3 * v[-1] + 10 * v[-2] - 18 * v[-3] + 6 * v[-4] - v[-5]) / (12 * h)
    return slopes


def _segment_points(frames, values, slopes, a: int, b: int):
    """Float32 control points of the segment between keys ``a`` and ``b``: 4 x (C, 2)."""
    third = (frames[b] - frames[a]) / 3.0
    channels = values.shape[1]
    p0 = np.stack([np.full(channels, frames[a]), values[a]], axis=-1)
    p3 = np.stack([np.full(channels, frames[b]), values[b]], axis=-1)
    p1 = np.stack([np.full(channels, frames[a] + third), values[a] + slopes[a] * third], axis=-1)
    p2 = np.stack([np.full(channels, frames[b] - third), values[b] - slopes[b] * third], axis=-1)
    return _f32(p0), _f32(p1), _f32(p2), _f32(p3)


def reduce_to_bezier(
    frames: np.ndarray,
    values: np.ndarray,
    tolerance: float,
    *,
    error: ErrorFunction = max_abs_error,
    constant_tolerance: float | None = None,
) -> list[ChannelKeys]:
    """Bezier keys at a few of the sampled frames, within ``tolerance`` at every sampled frame.

    frames: (N,) increasing; values: (N,) or (N, C), one column per F-curve of a channel group
    (location xyz, Euler xyz, quaternion wxyz, lens). ``error(samples, curve) -> (N,)`` measures a
    frame's distance in the group's own terms (:func:`distance_error` for positions,
    :func:`euler_angle_error` or :func:`quaternion_angle_error` for rotations, radians); it is
    compared with ``tolerance``. The first and last frames are always keys; the channels of a group
    share their key frames, except constant channels (peak-to-peak within ``constant_tolerance``,
    default ``tolerance / 10``), which get a single flat key. Returns one :class:`ChannelKeys` per
    column. Keys sit on sampled frames, so in the worst case every frame is a key.
    """
    frames = np.asarray(frames, dtype=np.float64)
    samples = np.asarray(values, dtype=np.float64).reshape(len(frames), -1)
    if frames.ndim != 1 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty (N,) array, got shape {frames.shape}")
    if np.any(np.diff(frames) <= 0):
        raise ValueError("frames must be strictly increasing")
    if not (np.all(np.isfinite(samples)) and np.all(np.isfinite(frames))):
        raise ValueError("frames and values must be finite")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    if constant_tolerance is None:
        constant_tolerance = 0.1 * tolerance

    # Constant channels become one flat key; the error check below includes that approximation.
    spread = samples.max(axis=0) - samples.min(axis=0)
    constant = spread <= constant_tolerance
    target = samples.copy()
    target[:, constant] = _f32(0.5 * (samples.max(axis=0) + samples.min(axis=0)))[constant]
    slopes = sample_slopes(frames, target)
    slopes[:, constant] = 0.0

    keys = {0, len(frames) - 1}
    pending = [(0, len(frames) - 1)] if len(frames) > 2 else []
    while pending:
        a, b = pending.pop()
        p0, p1, p2, p3 = _segment_points(frames, target, slopes, a, b)
        inside = frames[a + 1:b]
        curve = evaluate_segments(p0[None], p1[None], p2[None], p3[None], inside[:, None])
        curve[:, constant] = target[a + 1:b][:, constant]
        err = error(samples[a + 1:b], curve)
        worst = int(np.argmax(err))
        if err[worst] > tolerance:
            split = a + 1 + worst
            keys.add(split)
            pending.extend(seg for seg in ((a, split), (split, b)) if seg[1] - seg[0] > 1)
    return _channel_keys(frames, target, slopes, sorted(keys), constant)


def _channel_keys(frames, values, slopes, keys: list[int], constant: np.ndarray):
    """Per-channel keys with ALIGNED handles a third of the way to the neighbouring keys."""
    index = np.array(keys)
    key_frames = frames[index]
    gaps = np.diff(key_frames)
    # A key's handle reaches a third of its segment; the end keys mirror their only segment.
    left = np.concatenate([gaps[:1], gaps]) / 3.0 if len(gaps) else np.ones(1)
    right = np.concatenate([gaps, gaps[-1:]]) / 3.0 if len(gaps) else np.ones(1)
    out = []
    for c in range(values.shape[1]):
        if constant[c]:
            value = values[0, c]
            out.append(ChannelKeys(co=_f32([[frames[0], value]]),
                                   handle_left=_f32([[frames[0] - 1.0, value]]),
                                   handle_right=_f32([[frames[0] + 1.0, value]])))
            continue
        v, m = values[index, c], slopes[index, c]
        out.append(ChannelKeys(
            co=_f32(np.stack([key_frames, v], axis=-1)),
            handle_left=_f32(np.stack([key_frames - left, v - m * left], axis=-1)),
            handle_right=_f32(np.stack([key_frames + right, v + m * right], axis=-1)),
        ))
    return out
