"""Blender's fcurve evaluation and object matrix composition without ``bpy``, for whole timelines.

Imported inside Blender (by ``scene_io.sampling``, which reads the scene into the plain data used
here) and by plain tests, so only numpy and the standard library; nothing here touches Blender,
so it may run on worker threads. It reproduces (Blender 5.0 sources named):

- Evaluation time ``frame * frame_map_old / frame_map_new`` in float32
  (``BKE_scene_frame_to_ctime``): :func:`eval_times`.
- Keyframes (``fcurve_eval_keyframes``): constant, linear and Bezier segments with Blender's
  handle correction, cubic root finding and float32 arithmetic, constant and linear
  extrapolation, the 1e-4 frame snap onto keys, for all curves and times at once, the root
  finding shared by curves with the same key times: :func:`evaluate_keys`. A root that numpy's
  exp, log or cos could round across a float32 boundary is recomputed by :func:`solve_cubic`.
  Easings, modifiers and baked samples are not modelled (:func:`keys_from_points` gives None).
- Values clamped to the property's hard range (``BKE_animsys_write_to_rna_path``).
- ``BKE_object_to_mat4``: ``T(location + delta_location) @ Rdelta @ R @ S(scale * delta_scale)``,
  Euler matrices per rotation order (``eulO_to_mat3``), quaternions normalised first (a zero
  quaternion becomes (0, 1, 0, 0)), axis-angle with a zero axis as identity; then
  ``parent.matrix_world @ matrix_parent_inverse @ local`` up the parent chain.

Blender composes in float32, this module in float64 from the float32 channel values: matrices
agree to float32 rounding (about 1e-7 relative). Layouts: channels ``(size, n, M)`` (component,
object, time), rotations ``(3, 3, ...)``, matrices ``(..., 4, 4)``.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

TRANSFORM_CHANNELS = {
    "location": 3, "rotation_euler": 3, "rotation_quaternion": 4, "rotation_axis_angle": 4,
    "scale": 3, "delta_location": 3, "delta_rotation_euler": 3, "delta_rotation_quaternion": 4,
    "delta_scale": 3,
}
"""Object properties :func:`local_matrices` composes (name -> array length)."""

_CONSTANT, _LINEAR, _BEZIER = 0, 1, 2  # BEZT_IPO_*: KeyframePoint.interpolation as foreach_get ints
_SNAP = np.float32(1e-4)  # BEZT_BINARYSEARCH_THRESH: a time this close to a key takes its value
_FLT_EPSILON = np.float32(np.finfo(np.float32).eps)
_ROOT_MIN, _ROOT_MAX = np.float32(-1e-10), np.float32(1.000001)  # solve_cubic's accepted range
_CHUNK_SAMPLES = 1 << 19  # objects x frames composed at once (bounds the temporary arrays)


# ------------------------------------------------------------------------------------------------
# Keyframes and evaluation times


@dataclass(frozen=True)
class Keys:
    """One fcurve's keyframes (``BezTriple``): float32 arrays (K,), ``ipo`` int (K,)."""

    x: np.ndarray
    y: np.ndarray
    left_x: np.ndarray
    left_y: np.ndarray
    right_x: np.ndarray
    right_y: np.ndarray
    ipo: np.ndarray
    constant: bool
    """Constant extrapolation."""


def keys_from_points(co: np.ndarray, handle_left: np.ndarray, handle_right: np.ndarray,
                     ipo: np.ndarray, constant: bool) -> Keys | None:
    """An fcurve's keys as ``foreach_get`` reads them, or None where :func:`evaluate_keys` would
    not reproduce Blender.

    co, handle_left, handle_right: (K, 2) float32 (frame, value); ipo: (K,) int
    ``KeyframePoint.interpolation`` (0 constant, 1 linear, 2 Bezier, higher the easings);
    constant: constant (not linear) extrapolation. None for no keys, an easing interpolation, or
    keys closer than 1e-3 frames.
    """
    x = co[:, 0]
    # Keys closer than twice the snap distance make the binary search's choice order-dependent.
    if ipo.size == 0 or ipo.max() > _BEZIER or (x.size > 1 and np.diff(x).min() <= 1e-3):
        return None
    return Keys(x, co[:, 1], handle_left[:, 0], handle_left[:, 1], handle_right[:, 0],
                handle_right[:, 1], ipo, constant)


def eval_times(frames: np.ndarray, frame_map_old: int, frame_map_new: int) -> np.ndarray:
    """Animation evaluation times of whole ``frames`` (N,) with time remapping: (N,) float32."""
    framelen = np.float32(frame_map_old) / np.float32(frame_map_new)
    return np.asarray(frames, np.float32) * framelen


# ------------------------------------------------------------------------------------------------
# FCurve evaluation: a numpy transcription of fcurve_eval_keyframes (blenkernel/intern/fcurve.cc)


def _sqrt3d(value: float) -> float:
    """Blender's ``sqrt3d``, the real cube root through the C library's exp and log."""
    if value == 0.0:
        return 0.0
    return -math.exp(math.log(-value) / 3) if value < 0.0 else math.exp(math.log(value) / 3)


def solve_cubic(c0: float, c1: float, c2: float, c3: float) -> list[float]:
    """Blender's ``solve_cubic`` line by line: the float32 roots in [0, 1] it reports, in order."""
    def keep(*roots: float) -> list[float]:
        roots32 = (float(np.float32(r)) for r in roots)
        return [r for r in roots32 if _ROOT_MIN <= r <= _ROOT_MAX]

    if c3 != 0.0:
        a = c2 / c3 / 3
        b, c = c1 / c3, c0 / c3
        p = b / 3 - a * a
        q = (2 * a * a * a - a * b + c) / 2
        d = q * q + p * p * p
        if d > 0.0:
            t = math.sqrt(d)
            return keep(_sqrt3d(-q + t) + _sqrt3d(-q - t) - a)[:1]
        if d == 0.0:
            t = _sqrt3d(-q)
            return keep(2 * t - a, -t - a)
        phi = math.acos(-q / math.sqrt(-(p * p * p)))
        t, cos_phi = math.sqrt(-p), math.cos(phi / 3)
        sin_part = math.sqrt(3 - 3 * cos_phi * cos_phi)
        return keep(2 * t * cos_phi - a, -t * (cos_phi + sin_part) - a,
                    -t * (cos_phi - sin_part) - a)
    if c2 != 0.0:
        disc = c1 * c1 - 4 * c2 * c0
        if disc > 0:
            disc = math.sqrt(disc)
            return keep((-c1 - disc) / (2 * c2), (-c1 + disc) / (2 * c2))
        return keep(-c1 / (2 * c2)) if disc == 0 else []
    if c1 != 0.0:
        return keep(-c0 / c1)
    return [0.0] if c0 == 0.0 else []


def _segment_cubics(x0, right_x, left_x, x1) -> np.ndarray:
    """``findzero``'s cubic in u for each Bezier segment, less its time term ``c0 = x0 - t``.

    All float32 arrays (S,). Returns (7, S) float64: c1, c2, c3 and solve_cubic's ``a``,
    ``2 a^3 - a b``, ``p`` and ``p^3``, which do not depend on the time.
    """
    v2x, _, v3x, _ = _corrected_handles(x0, x0, right_x, x0, left_x, x0, x1, x0)
    three, two = np.float32(3.0), np.float32(2.0)
    c1 = (three * (v2x - x0)).astype(np.float64)
    c2 = (three * (x0 - two * v2x + v3x)).astype(np.float64)
    c3 = (x1 - x0 + three * (v2x - v3x)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = c2 / c3 / 3
        b = c1 / c3
        p = b / 3 - a * a
        return np.stack([c1, c2, c3, a, 2 * a * a * a - a * b, p, p * p * p])


def _cubic_candidates(c0: np.ndarray, cubics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``solve_cubic``'s candidate roots, in its order, and how far numpy may move them.

    c0: (N,) float64 ``x0 - t``; cubics: (7, N) rows of :func:`_segment_cubics`. Returns
    (candidates (3, N) float64, NaN where none; tolerance (N,)). numpy's exp, log, acos and cos
    may differ from the C library's in the last bits (measured: under 2**-49 of the terms summed;
    allowed: 2**-45, more where ``sqrt(3 - 3 cos^2)`` is near 0 and amplifies an error of cos).
    """
    c1, c2, c3, a_all, k_all, p_all, p3_all = cubics
    cands = np.full((3, c0.size), np.nan)
    tol = np.zeros(c0.size)
    with np.errstate(all="ignore"):
        cubic = np.flatnonzero(c3 != 0.0)
        a, p = a_all[cubic], p_all[cubic]
        q = (k_all[cubic] + c0[cubic] / c3[cubic]) / 2  # (2a^3 - ab + c) / 2, Blender's order
        d = q * q + p3_all[cubic]
        i, a_, q_, sqrt_d = cubic[d > 0], a[d > 0], q[d > 0], np.sqrt(d[d > 0])
        s1, s2 = _cbrt(-q_ + sqrt_d), _cbrt(-q_ - sqrt_d)
        cands[0, i] = s1 + s2 - a_
        tol[i] = 2.0**-45 * (np.abs(a_) + np.abs(s1) + np.abs(s2))
        i, a_, s1 = cubic[d == 0], a[d == 0], _cbrt(-q[d == 0])
        cands[0, i], cands[1, i] = 2 * s1 - a_, -s1 - a_
        tol[i] = 2.0**-45 * (np.abs(a_) + 3 * np.abs(s1))
        i, a_, p_, q_ = cubic[d < 0], a[d < 0], p[d < 0], q[d < 0]
        t, cos_phi = np.sqrt(-p_), np.cos(np.arccos(-q_ / np.sqrt(-p3_all[i])) / 3)
        sin_part = np.sqrt(3 - 3 * cos_phi * cos_phi)
        cands[0, i] = 2 * t * cos_phi - a_
        cands[1, i] = -t * (cos_phi + sin_part) - a_
        cands[2, i] = -t * (cos_phi - sin_part) - a_
        tol[i] = (2.0**-45 * (np.abs(a_) + 2 * t)
                  + t * np.fmin(3 * 2.0**-50 / sin_part, np.sqrt(6 * 2.0**-50)))
        # Not cubic: IEEE operations only, exactly Blender's.
        i = np.flatnonzero((c3 == 0.0) & (c2 != 0.0))
        disc = c1[i] * c1[i] - 4 * c2[i] * c0[i]
        two, one = i[disc > 0], i[disc == 0]
        sqrt_disc = np.sqrt(disc[disc > 0])
        cands[0, two] = (-c1[two] - sqrt_disc) / (2 * c2[two])
        cands[1, two] = (-c1[two] + sqrt_disc) / (2 * c2[two])
        cands[0, one] = -c1[one] / (2 * c2[one])
        i = np.flatnonzero((c3 == 0.0) & (c2 == 0.0))
        cands[0, i] = np.where(c1[i] != 0.0, -c0[i] / c1[i], np.where(c0[i] == 0.0, 0.0, np.nan))
    return cands, tol


def _first_root(c0: np.ndarray, cubics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``findzero``: the first root in [0, 1] that ``solve_cubic`` reports, per sample.

    Arguments as :func:`_cubic_candidates`. Returns (u float32, found bool). Where numpy's
    rounding could change the answer, :func:`solve_cubic` recomputes it with the C library.
    """
    cands, tol = _cubic_candidates(c0, cubics)
    roots = cands.astype(np.float32)
    valid = (roots >= _ROOT_MIN) & (roots <= _ROOT_MAX)
    found = valid.any(axis=0)
    every = np.arange(c0.size)
    first = np.argmax(valid, axis=0)
    u = np.where(found, roots[first, every], np.float32(0.0))
    # Unsure: the root found lies closer to a float32 rounding boundary than numpy's error, or a
    # candidate lies near an end of the accepted range.
    u64 = u.astype(np.float64)
    half_gap = 0.5 * np.minimum(np.nextafter(u, np.float32(np.inf)).astype(np.float64) - u64,
                                u64 - np.nextafter(u, np.float32(-np.inf)).astype(np.float64))
    with np.errstate(invalid="ignore"):
        unsure = found & (half_gap - np.abs(cands[first, every] - u64) <= tol)
        unsure |= ((np.abs(cands - _ROOT_MIN) < 1e-6) | (np.abs(cands - _ROOT_MAX) < 1e-6)).any(0)
    c1, c2, c3 = cubics[:3]
    for i in np.flatnonzero(unsure & (c3 != 0.0)):
        exact = solve_cubic(float(c0[i]), float(c1[i]), float(c2[i]), float(c3[i]))
        found[i] = bool(exact)
        u[i] = exact[0] if exact else 0.0
    return u, found


def _cbrt(value: np.ndarray) -> np.ndarray:
    """Blender's ``sqrt3d`` on arrays (numpy's exp and log)."""
    with np.errstate(divide="ignore"):
        root = np.exp(np.log(np.abs(value)) / 3)
    return np.where(value == 0, 0.0, np.where(value < 0, -root, root))


def _corrected_handles(x0, y0, right_x, right_y, left_x, left_y, x1, y1):
    """``BKE_fcurve_correct_bezpart``: handles shortened so that x stays monotonic."""
    span = x1 - x0
    h1x, h1y = x0 - right_x, y0 - right_y
    h2x, h2y = x1 - left_x, y1 - left_y
    len1, len2 = np.abs(h1x), np.abs(h2x)
    fix1, fix2 = len1 > span, len2 > span
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        fac1, fac2 = span / len1, span / len2
        return (np.where(fix1, x0 - fac1 * h1x, right_x), np.where(fix1, y0 - fac1 * h1y, right_y),
                np.where(fix2, x1 - fac2 * h2x, left_x), np.where(fix2, y1 - fac2 * h2y, left_y))


def _concat(keys: list[Keys]):
    """Keys of many curves end to end: (count, first, curve of each key, Keys of all keys)."""
    count = np.array([k.x.size for k in keys])
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    joined = Keys(*(np.concatenate([getattr(k, name) for k in keys])
                     for name in ("x", "y", "left_x", "left_y", "right_x", "right_y", "ipo")),
                   constant=np.array([k.constant for k in keys]))
    return count, first, np.repeat(np.arange(len(keys)), count), joined


def _group_samples(groups: list[Keys], t: np.ndarray):
    """Per key-timing group and time: which piece of the curve, its variable, the Bezier root.

    A curve with K keys has 2K + 1 pieces ("slots"): 0 extrapolation before the first key,
    1..K-1 the segments, K extrapolation after the last key, K+1+j key j hit (within the 1e-4
    snap of the binary search). Returns (slot, var, u, failed), each (G, M): ``var`` is
    ``x_end - t`` for extrapolation and ``t - x_start`` in a segment, ``u`` the Bezier parameter.
    """
    count, first, group_of_key, keys = _concat(groups)
    x = keys.x
    # Keys before t[m]: x_k < t[m] iff m >= (number of times <= x_k); a histogram and a cumsum.
    rank = np.searchsorted(t, x, side="right")
    hist = np.bincount(group_of_key * (t.size + 1) + rank, minlength=len(groups) * (t.size + 1))
    before = np.cumsum(hist.reshape(len(groups), t.size + 1), axis=1)[:, :t.size]
    tt = np.broadcast_to(t, before.shape)
    k, x_first, x_last = count[:, None], x[first][:, None], x[first + count - 1][:, None]
    start = tt <= x_first
    end = ~start & (tt >= x_last)
    prev = first[:, None] + np.clip(before - 1, 0, k - 1)
    nxt = first[:, None] + np.clip(before, 0, k - 1)
    snap_prev = np.abs(tt - x[prev]) <= _SNAP
    snap_next = ~snap_prev & (np.abs(x[nxt] - tt) <= _SNAP)
    slot = np.select([start, end, snap_prev, snap_next],
                     [0, k, k + before, k + 1 + before], default=before)
    var = np.where(start, x_first - tt, np.where(end, x_last - tt, tt - x[prev]))
    u = np.zeros(before.shape, np.float32)
    failed = np.zeros(before.shape, bool)
    rows, cols = np.nonzero(~(start | end | snap_prev | snap_next))
    if rows.size:
        # Segment (k - 1, k) of the joined keys for every key k (a group's first key: unused).
        segments = _segment_cubics(np.roll(x, 1), np.roll(keys.right_x, 1), keys.left_x, x)
        segment = nxt[rows, cols]
        c0 = (x[segment - 1] - t[cols]).astype(np.float64)
        u[rows, cols], found = _first_root(c0, segments[:, segment])
        failed[rows, cols] = ~found
    return slot, var, u, failed


def _slot_tables(curves: list[Keys]) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of every curve's slots: (columns (7, R) float32, first row of each curve).

    value = P0 + Q var / D + P1 u + P2 u^2 + P3 u^3, columns (P0, Q, D, P1, P2, P3, bezier), with
    Blender's float32 operations in Blender's order: a linear segment is ``change * (t - x0) /
    duration + begin``, extrapolation ``y_end - slope * (x_end - t)`` and a Bezier segment
    ``berekeny``'s polynomial in the root ``u`` (``bezier`` marks where a failed root gives 0).
    """
    count, first, curve, k = _concat(curves)
    table_first = 2 * first + np.arange(len(curves))
    columns = np.zeros((7, 2 * count.sum() + len(curves)), np.float32)
    p0, q, dd, p1, p2, p3, bezier = columns
    dd[:] = 1.0
    last = first + count - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        for rows, end, nb, hx, hy in (
                (table_first, first, np.minimum(first + 1, last), k.left_x, k.left_y),
                (table_first + count, last, np.maximum(last - 1, first), k.right_x, k.right_y)):
            dx_lin, dx_handle = k.x[nb] - k.x[end], k.x[end] - hx[end]
            slope = np.where(k.ipo[end] == _LINEAR,
                             np.where(dx_lin == 0, 0, (k.y[nb] - k.y[end]) / dx_lin),
                             np.where(dx_handle == 0, 0, (k.y[end] - hy[end]) / dx_handle))
            constant = k.constant | (k.ipo[end] == _CONSTANT)  # a lone key: dx_lin is 0
            p0[rows], q[rows] = k.y[end], np.where(constant, 0, -slope)
        keys = np.arange(count.sum())
        p0[first[curve] + curve + count[curve] + 1 + keys] = k.y  # a key hit exactly
        n = keys[keys != first[curve]]  # segment (n - 1, n) of each curve
        rows, p = first[curve[n]] + curve[n] + n, n - 1
        y0, y1, x0, x1 = k.y[p], k.y[n], k.x[p], k.x[n]
        linear = k.ipo[p] == _LINEAR
        p0[rows], q[rows], dd[rows] = y0, np.where(linear, y1 - y0, 0), np.where(linear, x1 - x0, 1)
        ry, ly = k.right_y[p], k.left_y[n]
        flat = ((np.abs(y0 - y1) < _FLT_EPSILON) & (np.abs(ry - ly) < _FLT_EPSILON)
                & (np.abs(ly - y1) < _FLT_EPSILON))
        is_bezier = (k.ipo[p] == _BEZIER) & ~flat
        _, ry, _, ly = _corrected_handles(x0, y0, k.right_x[p], ry, k.left_x[n], ly, x1, y1)
        three, two = np.float32(3.0), np.float32(2.0)
        p1[rows] = np.where(is_bezier, three * (ry - y0), 0)
        p2[rows] = np.where(is_bezier, three * (y0 - two * ry + ly), 0)
        p3[rows] = np.where(is_bezier, y1 - y0 + three * (ry - ly), 0)
        bezier[rows] = is_bezier
    return columns, table_first


def evaluate_keys(keys: list[Keys], t: np.ndarray) -> np.ndarray:
    """All curves at ascending float32 times ``t``: (C, M) float32.

    Curves with the same key times and handle times (a keyframed vector's channels) share the
    search and the Bezier root finding; only the value polynomial is per curve.
    """
    signatures: dict[bytes, int] = {}
    groups: list[Keys] = []
    group_of_curve = []
    for curve in keys:
        signature = curve.x.tobytes() + curve.left_x.tobytes() + curve.right_x.tobytes()
        if signature not in signatures:
            signatures[signature] = len(groups)
            groups.append(curve)
        group_of_curve.append(signatures[signature])
    slot, var, u, failed = _group_samples(groups, t)
    columns, table_first = _slot_tables(keys)
    g = np.array(group_of_curve)
    index = table_first[:, None] + slot[g]  # (C, M) rows of the slot tables
    p0, q, dd, p1, p2, p3, bezier = columns
    # Blender's operations and order: change * var / duration + begin (linear segments,
    # extrapolation), then berekeny's c0 + u c1 + u u c2 + u u u c3. All-zero terms are skipped.
    value = np.take(p0, index)
    if q.any():
        term = np.take(q, index)
        term *= var[g]
        term /= np.take(dd, index)
        value = np.add(term, value, out=term)
    if p1.any() or p2.any() or p3.any():
        u = u[g]
        uu = u * u
        for power, column in ((u, p1), (uu, p2), (uu * u, p3)):
            term = np.take(column, index)
            value += np.multiply(power, term, out=term)
    if failed.any():  # findzero() failing makes Blender return 0 for a (non-flat) Bezier segment
        value[failed[g] & (np.take(bezier, index) != 0)] = 0.0
    return value


def evaluate_curves(curves: Sequence[Keys | np.ndarray], times: np.ndarray) -> np.ndarray:
    """Values of ``curves`` at float32 ``times`` (M,), in any order: (C, M) float32.

    Each curve is its :class:`Keys` or its values at ``times`` already (M,), from
    ``FCurve.evaluate`` where :func:`keys_from_points` gave None.
    """
    out = np.empty((len(curves), times.size), np.float32)
    rows = [row for row, curve in enumerate(curves) if isinstance(curve, Keys)]
    for row, curve in enumerate(curves):
        if not isinstance(curve, Keys):
            out[row] = curve
    if rows and times.size:
        if np.all(times[1:] >= times[:-1]):  # evaluate_keys wants ascending times
            out[rows] = evaluate_keys([curves[row] for row in rows], times)
        else:
            order = np.argsort(times, kind="stable")
            out[np.ix_(rows, order)] = evaluate_keys([curves[row] for row in rows], times[order])
    return out


# ------------------------------------------------------------------------------------------------
# Matrix composition (BKE_object_to_mat4 and the parent chain)

# eulO_to_mat3's RotOrderInfo: axis permutation (i, j, k) and parity.
EULER_ORDERS = {"XYZ": ((0, 1, 2), False), "XZY": ((0, 2, 1), True), "YXZ": ((1, 0, 2), True),
                 "YZX": ((1, 2, 0), False), "ZXY": ((2, 0, 1), False), "ZYX": ((2, 1, 0), True)}


def euler_rotation(euler: np.ndarray, order: str) -> np.ndarray:
    """``eulO_to_mat3``: Euler angles (3, ...) in a rotation order -> rotation (3, 3, ...)."""
    (i, j, k), parity = EULER_ORDERS[order]
    e = euler.astype(np.float64)
    if parity:
        e = -e
    cos, sin = np.cos(e), np.sin(e)
    ci, cj, ch, si, sj, sh = cos[i], cos[j], cos[k], sin[i], sin[j], sin[k]
    cc, cs, sc, ss = ci * ch, ci * sh, si * ch, si * sh
    m = np.empty((3, 3, *e.shape[1:]))
    m[i, i], m[i, j], m[i, k] = cj * ch, sj * sc - cs, sj * cc + ss
    m[j, i], m[j, j], m[j, k] = cj * sh, sj * ss + cc, sj * cs - sc
    m[k, i], m[k, j], m[k, k] = -sj, cj * si, cj * ci
    return m


def quaternion_rotation(quaternion: np.ndarray) -> np.ndarray:
    """``quat_to_mat3`` of (w, x, y, z) (4, ...) normalised first -> rotation (3, 3, ...).

    ``normalize_qt`` in float32: q * (1 / |q|), and a zero quaternion becomes (0, 1, 0, 0).
    """
    q = quaternion.astype(np.float32)
    length = np.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    zero = length == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        w, x, y, z = (q * (np.float32(1.0) / length)).astype(np.float64)
    w, x, y, z = (np.where(zero, value, v) for value, v in zip((0.0, 1.0, 0.0, 0.0), (w, x, y, z),
                                                                strict=True))
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def axis_angle_rotation(axis_angle: np.ndarray) -> np.ndarray:
    """``axis_angle_to_mat3`` of (angle, x, y, z) (4, ...) -> rotation (3, 3, ...).

    The axis is normalised first; one of squared length up to 1e-35 gives the identity.
    """
    aa = axis_angle.astype(np.float32)
    norm2 = aa[1] * aa[1] + aa[2] * aa[2] + aa[3] * aa[3]
    usable = norm2 > np.float32(1e-35)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(usable, aa[1:] / np.sqrt(norm2), 0.0).astype(np.float64)
    angle = np.where(usable, aa[0], 0.0).astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    ico = 1 - cos
    m = n[:, None] * n[None, :] * ico
    for r in range(3):
        m[r, r] += cos
    for r, c, axis in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
        sign = -1.0 if (r, c) != (0, 2) else 1.0
        m[r, c] += sign * sin * n[axis]
        m[c, r] -= sign * sin * n[axis]
    return m


@dataclass(frozen=True)
class Channels:
    """Channels of n data-blocks as read from Blender (plain data, safe off the main thread)."""

    static: dict[str, np.ndarray]
    """Name -> (n, size) float32 current values (what a channel without fcurve keeps)."""
    ranges: dict[str, tuple[np.float32, np.float32]]
    """Name -> the RNA hard range the animation system clamps to."""
    targets: list[tuple[str, int, int]]
    """(name, item, index) of each animated channel."""
    curves: list[Keys | np.ndarray]
    """Per target: its keys, or its values already from ``FCurve.evaluate``."""


def channel_arrays(read: Channels, times: np.ndarray) -> dict[str, np.ndarray]:
    """Each channel at float32 ``times`` (M,): name -> (size, n, M) float32, (size, n, 1) if static.

    Values are clamped to the RNA hard range (``RNA_property_float_clamp``) unless that range is
    the whole float range (where only an infinite value would change).
    """
    values = evaluate_curves(read.curves, times)
    out = {}
    for name, static in read.static.items():
        rows = [row for row, target in enumerate(read.targets) if target[0] == name]
        if not rows:
            out[name] = static.T[:, :, None]
            continue
        array = np.repeat(static.T[:, :, None], times.size, axis=2)
        items, indices = zip(*(read.targets[row][1:] for row in rows), strict=True)
        array[list(indices), list(items)] = values[rows]
        low, high = read.ranges[name]
        if low > -np.finfo(np.float32).max or high < np.finfo(np.float32).max:
            np.clip(array, low, high, out=array)
        out[name] = array
    return out


def local_matrices(read: Channels, modes: Sequence[str], times: np.ndarray) -> np.ndarray:
    """``BKE_object_to_mat4`` for each object and time: (n, M, 4, 4) float64.

    ``T(location + delta_location) @ Rdelta @ R @ S(scale * delta_scale)``. read: the
    :data:`TRANSFORM_CHANNELS` of n objects; modes: (n,) ``Object.rotation_mode``, objects with
    the same mode next to each other; times: (M,) float32.
    """
    ch = channel_arrays(read, times)
    out = np.empty((len(modes), times.size, 4, 4))
    out[:, :, 3, :3] = 0.0
    out[:, :, 3, 3] = 1.0
    location = ch["location"] + ch["delta_location"]  # float32 sum and product, as Blender
    scale = ch["scale"] * ch["delta_scale"]
    for r in range(3):
        out[:, :, r, 3] = location[r]
    begin = 0
    for mode, group in itertools.groupby(modes):
        rows = slice(begin, begin + len(list(group)))
        begin = rows.stop
        delta = None
        if mode == "QUATERNION":
            rotation = quaternion_rotation(ch["rotation_quaternion"][:, rows])
            delta = quaternion_rotation(ch["delta_rotation_quaternion"][:, rows])
        elif mode == "AXIS_ANGLE":  # the delta axis-angle is not exposed: identity
            rotation = axis_angle_rotation(ch["rotation_axis_angle"][:, rows])
        else:
            rotation = euler_rotation(ch["rotation_euler"][:, rows], mode)
            delta = euler_rotation(ch["delta_rotation_euler"][:, rows], mode)
        if delta is not None and not (delta.shape[-1] == 1 and np.all(
                delta == np.eye(3)[:, :, None, None])):
            rotation = np.einsum("ij...,jk...->ik...", delta, rotation)
        for r in range(3):
            for c in range(3):  # R @ diag(scale) scales the columns
                np.multiply(rotation[r, c], scale[c, rows], out=out[rows, :, r, c])
    return out


@dataclass(frozen=True)
class ObjectChunk:
    """n objects of one parent depth as read from Blender (plain data)."""

    pointers: list[int]
    """(n,) ``as_pointer()`` of each object: the keys of :func:`world_matrices`."""
    parents: list[int | None]
    """(n,) the parent's pointer, None for a root."""
    parent_inverse: np.ndarray
    """(n, 4, 4) float64 ``matrix_parent_inverse``."""
    modes: list[str]
    """(n,) ``rotation_mode``, equal modes next to each other."""
    channels: Channels
    """The objects' :data:`TRANSFORM_CHANNELS`."""


def _world_chunk(chunk: ObjectChunk, times: np.ndarray,
                 world: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """World matrices of a chunk whose parents are in ``world`` (numpy only)."""
    local = local_matrices(chunk.channels, chunk.modes, times)
    out = {}
    for i, (pointer, parent) in enumerate(zip(chunk.pointers, chunk.parents, strict=True)):
        out[pointer] = (local[i] if parent is None
                        else (world[parent] @ chunk.parent_inverse[i]) @ local[i])
    return out


def chunk_size(objects: int, samples: int, workers: int) -> int:
    """Objects per :class:`ObjectChunk` for ``objects`` of one depth at ``samples`` times.

    Twice as many chunks as workers evens out a core that is busy with something else; no chunk
    composes more than ``_CHUNK_SAMPLES`` matrices at once.
    """
    return min(max(1, _CHUNK_SAMPLES // max(1, samples)), -(-objects // (2 * workers)))


def pool_size() -> int:
    """Worker threads for :func:`world_matrices`: the CPU cores, at most 4."""
    return min(4, os.cpu_count() or 1)


def world_matrices(levels: Sequence[Sequence[ObjectChunk]], times: np.ndarray,
                   workers: int) -> dict[int, np.ndarray]:
    """World matrices of every object in ``levels`` at float32 evaluation ``times`` (M,).

    levels: chunks by parent depth, roots first (a chunk's parents are in earlier levels).
    Returns ``{pointer: (M, 4, 4) float64}``. The chunks of one level run on a pool of
    ``workers`` threads (numpy releases the GIL), one level after the other.
    """
    world: dict[int, np.ndarray] = {}
    with ThreadPoolExecutor(workers) as pool:
        for chunks in levels:  # parents before children
            for result in list(pool.map(lambda chunk: _world_chunk(chunk, times, world), chunks)):
                world.update(result)
    return world
