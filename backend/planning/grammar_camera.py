"""Camera geometry of the grammar planner: framing a subject and moving the camera over time.

World frame: the scene's, +Z up (Blender), metres. A camera is held as its centre ``eye`` and
three angles, all radians:

- ``yaw``: heading of the forward axis, counter-clockwise from world +X seen from above;
- ``pitch``: elevation of the forward axis (positive looks up, -pi/2 straight down);
- ``roll``: rotation about the forward axis, positive turns the camera's +x toward its +y
  (``roll_cw`` in :mod:`backend.planning.motion_labels`).

:func:`camera_rotations` turns them into camera-to-world rotations with OpenCV camera axes (+x
right, +y down, +z forward) -- the only place this planner builds camera axes. Hence a pan right
lowers the yaw, a tilt up raises the pitch, and an orbit "right" (the camera travelling toward its
own +x) turns the camera centre counter-clockwise about the subject seen from above.

Shot sizes follow the subject's framing extent (its box height, or its horizontal diagonal where
that is larger in frame terms): a size asks that extent to cover a fraction of the frame height
with a nominal lens, which sets the distance; the focal length in pixels then follows from
``fy = fraction * H * distance / extent`` (:func:`frame_subject`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

SENSOR_WIDTH_MM = 36.0
"""Full-frame sensor width: nominal lenses in millimetres become pixels through it."""

SIZE_TABLE: dict[str, tuple[float, float, float]] = {
    # size: (extent / frame height, nominal lens mm, look-at height as a fraction of the box)
    "extreme_wide": (0.12, 24.0, 0.5),
    "wide": (0.45, 28.0, 0.5),
    "full": (0.85, 35.0, 0.5),
    "medium": (1.6, 40.0, 0.72),
    "medium_close": (2.5, 50.0, 0.8),
    "close": (4.5, 65.0, 0.88),
    "extreme_close": (10.0, 100.0, 0.92),
}
"""How much of the frame the subject fills per shot size, widest first."""

ANGLE_ELEVATION_DEG = {"eye": 0.0, "low": -20.0, "worm": -55.0, "high": 30.0, "overhead": 90.0}
"""Camera elevation seen from the subject's look-at point, degrees (negative: below)."""
DUTCH_ROLL_DEG = 15.0
"""Roll of a dutch angle."""
MIN_HEIGHT_M = 0.1
"""The camera stays this far above the ground (the subject's box bottom)."""


@dataclass
class CameraState:
    """A camera at one instant, and the point it is about."""

    eye: np.ndarray
    """(3,) camera centre, world."""
    yaw: float
    pitch: float
    roll: float
    fx: float
    """Focal length in pixels."""
    target: np.ndarray
    """(3,) the subject point that orbits, cranes and dolly zooms keep in frame."""
    ground: float = 0.0
    """World height the camera may not go below (plus ``MIN_HEIGHT_M``)."""


@dataclass
class MovePlan:
    """One move with its numbers resolved."""

    kind: str
    """pan, tilt, roll, dolly, truck, pedestal, crane, zoom, dolly_zoom, orbit, track, whip."""
    sign: float
    """+1 or -1 along the kind's axis (see :func:`build_path`)."""
    amount: float
    """Radians (rotations, orbits), metres (translations) or log focal factor (zoom)."""
    easing: str = "linear"
    window: tuple[float, float] = (0.0, 1.0)
    """Part of the phase the move runs in (a whip pan is short)."""
    axis: str = ""
    """For a whip: pan or tilt."""


@dataclass
class PhasePlan:
    """Moves that run together over frames ``first..last`` of the shot."""

    first: int
    last: int
    moves: list[MovePlan] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Camera axes


def camera_rotations(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations with OpenCV axes; yaw, pitch, roll: (N,) -> (N, 3, 3)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    forward = np.stack([cp * cy, cp * sy, sp], axis=-1)
    right = np.stack([sy, -cy, np.zeros_like(yaw)], axis=-1)
    down = np.cross(forward, right)
    cr, sr = np.cos(roll)[..., None], np.sin(roll)[..., None]
    x = cr * right + sr * down
    y = -sr * right + cr * down
    return np.stack([x, y, forward], axis=-1)


def look_angles(eye: np.ndarray, target: np.ndarray,
                fallback_yaw: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch that look from ``eye`` at ``target``; (..., 3) -> (...), (...).

    Looking straight up or down has no heading: ``fallback_yaw`` is kept there.
    """
    delta = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    horizontal = np.hypot(delta[..., 0], delta[..., 1])
    yaw = np.where(horizontal > 1e-9, np.arctan2(delta[..., 1], delta[..., 0]), fallback_yaw)
    pitch = np.arctan2(delta[..., 2], horizontal)
    return yaw, pitch


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of one OpenCV camera-to-world rotation (3, 3)."""
    forward = rotation[:, 2]
    pitch = float(np.arcsin(np.clip(forward[2], -1.0, 1.0)))
    if np.hypot(forward[0], forward[1]) > 1e-9:
        yaw = float(np.arctan2(forward[1], forward[0]))
    else:  # straight up or down: the image's up vector gives the heading
        up = -rotation[:, 1] * (1.0 if forward[2] < 0 else -1.0)
        yaw = float(np.arctan2(up[1], up[0]))
    base = camera_rotations(np.array([yaw]), np.array([pitch]), np.array([0.0]))[0]
    x = rotation[:, 0]
    roll = float(np.arctan2(x @ base[:, 1], x @ base[:, 0]))
    return yaw, pitch, roll


def poses(eye: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera-to-world (N, 4, 4) from centres (N, 3) and angles (N,)."""
    c2w = np.zeros((len(eye), 4, 4))
    c2w[:, :3, :3] = camera_rotations(yaw, pitch, roll)
    c2w[:, :3, 3] = eye
    c2w[:, 3, 3] = 1.0
    return c2w


# --------------------------------------------------------------------------------------------
# Framing


def framing_extent(box_min: np.ndarray, box_max: np.ndarray, aspect: float) -> float:
    """The subject extent a shot size is measured on: box height, or its horizontal diagonal
    in frame-height terms (a wide, flat subject must fit across), at least 5 cm."""
    size = np.asarray(box_max) - np.asarray(box_min)
    return float(max(size[2], np.hypot(size[0], size[1]) / aspect, 0.05))


def size_distance(size: str, extent: float, width: int, height: int) -> tuple[float, float]:
    """(distance, fx) that frames ``extent`` metres at ``size`` with its nominal lens."""
    fraction, lens_mm, _ = SIZE_TABLE[size]
    fx = lens_mm / SENSOR_WIDTH_MM * width
    return fx * extent / (fraction * height), fx


def fx_for(size: str, extent: float, distance: float, height: int) -> float:
    """The focal length in pixels that frames ``extent`` at ``size`` from ``distance``."""
    return SIZE_TABLE[size][0] * height * distance / extent


def frame_subject(box_min: np.ndarray, box_max: np.ndarray, size: str, angle: str,
                  azimuth: float, width: int, height: int, *, dutch: float = 0.0,
                  distance: float | None = None) -> CameraState:
    """A camera framing the box at ``size`` and ``angle``, seen from ``azimuth``.

    ``azimuth`` is the direction from the subject to the camera (radians, counter-clockwise from
    +X); ``dutch`` a roll in radians; ``distance`` overrides the size's own (the focal length
    then keeps the size).
    """
    box_min, box_max = np.asarray(box_min, float), np.asarray(box_max, float)
    extent = framing_extent(box_min, box_max, width / height)
    look_height = SIZE_TABLE[size][2]
    target = np.array([(box_min[0] + box_max[0]) / 2, (box_min[1] + box_max[1]) / 2,
                       box_min[2] + look_height * (box_max[2] - box_min[2])])
    nominal, fx = size_distance(size, extent, width, height)
    if distance is not None:
        fx = fx_for(size, extent, distance, height)
    else:
        distance = nominal
    elevation = np.deg2rad(ANGLE_ELEVATION_DEG[angle])
    direction = np.array([np.cos(elevation) * np.cos(azimuth),
                          np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    eye = target + distance * direction
    ground = float(box_min[2])
    eye[2] = max(eye[2], ground + MIN_HEIGHT_M)
    yaw, pitch = look_angles(eye, target, fallback_yaw=azimuth + np.pi)
    return CameraState(eye, float(yaw), float(pitch), dutch, fx, target, ground)


# --------------------------------------------------------------------------------------------
# Motion

EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda u: u,
    "in": lambda u: u * u,
    "out": lambda u: 1.0 - (1.0 - u) ** 2,
    "in_out": lambda u: u * u * (3.0 - 2.0 * u),
}
"""Progress curves on [0, 1]: ease in starts slow, ease out ends slow."""


def _progress(move: MovePlan, u: np.ndarray) -> np.ndarray:
    start, end = move.window
    local = np.clip((u - start) / max(end - start, 1e-9), 0.0, 1.0)
    return EASINGS[move.easing](local)


def _rotate_z(vector: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (3,) about world Z by angles (M,) -> (M, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1],
                     np.full_like(angle, vector[2])], axis=-1)


def _apply_phase(start: CameraState, phase: PhasePlan, u: np.ndarray,
                 track: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Camera over the frames from the phase start on; u: (M,) phase progress in [0, 1].

    Returns eye (M, 3), yaw, pitch, roll, fx (M,). Translations use the camera's axes at the
    phase start (a dolly follows the forward axis, a truck the camera's +x), pedestals and cranes
    the world's up, orbits turn about the vertical through the target.
    """
    m = len(u)
    eye = np.repeat(start.eye[None], m, axis=0)
    d_yaw, d_pitch, d_roll, log_zoom = (np.zeros(m) for _ in range(4))
    rotation = camera_rotations(np.array([start.yaw]), np.array([start.pitch]),
                                np.array([start.roll]))[0]
    right, forward = rotation[:, 0], rotation[:, 2]
    looks_at = False
    for move in phase.moves:
        p = _progress(move, u)
        value = move.sign * move.amount * p
        if move.kind == "pan" or (move.kind == "whip" and move.axis == "pan"):
            d_yaw -= value  # pan right = forward turns toward +x = lower yaw
        elif move.kind == "tilt" or move.kind == "whip":
            d_pitch += value
        elif move.kind == "roll":
            d_roll += value
        elif move.kind == "dolly":
            eye += value[:, None] * forward
        elif move.kind == "truck":
            eye += value[:, None] * right
        elif move.kind in ("pedestal", "crane"):
            eye[:, 2] += value
            looks_at |= move.kind == "crane"
        elif move.kind == "zoom":
            log_zoom += value
        elif move.kind == "dolly_zoom":
            depth = float((start.target - start.eye) @ forward)
            eye += value[:, None] * forward
            log_zoom += np.log(np.maximum(depth - value, 1e-3) / depth)
        elif move.kind == "orbit":
            offset = start.eye - start.target
            eye += _rotate_z(offset, value) - offset
            looks_at = True
        elif move.kind == "track" and track is not None:
            eye += track - track[0]
    eye[:, 2] = np.maximum(eye[:, 2], start.ground + MIN_HEIGHT_M)
    if looks_at:
        # Keep the subject where it was in frame: look at the target, plus the start offset.
        yaw0, pitch0 = look_angles(start.eye, start.target, start.yaw)
        yaw, pitch = look_angles(eye, start.target, start.yaw)
        yaw = yaw + (start.yaw - yaw0) + d_yaw
        pitch = pitch + (start.pitch - pitch0) + d_pitch
    else:
        yaw, pitch = start.yaw + d_yaw, start.pitch + d_pitch
    pitch = np.clip(pitch, -np.pi / 2, np.pi / 2)
    return eye, yaw, pitch, start.roll + d_roll, start.fx * np.exp(log_zoom)


def build_path(start: CameraState, phases: list[PhasePlan], num_frames: int,
               track: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The camera over one shot: (c2w (N, 4, 4), fx (N,)).

    Phases run one after another, each from where the previous one ended; frames after a
    phase keep its end state. ``track``: (N, 3) subject positions over the shot for follow
    moves.
    """
    n = num_frames
    eye = np.repeat(start.eye[None], n, axis=0)
    yaw, pitch, roll, fx = (np.full(n, value) for value in (start.yaw, start.pitch, start.roll,
                                                             start.fx))
    state = start
    for phase in phases:
        if not phase.moves:
            continue
        frames = np.arange(phase.first, n)
        span = max(phase.last - phase.first, 1)
        u = np.clip((frames - phase.first) / span, 0.0, 1.0)
        phase_track = None
        if track is not None:
            phase_track = track[np.minimum(frames, phase.last)]
        e, y, p, r, f = _apply_phase(state, phase, u, phase_track)
        eye[frames], yaw[frames], pitch[frames], roll[frames], fx[frames] = e, y, p, r, f
        state = replace(state, eye=e[-1].copy(), yaw=float(y[-1]), pitch=float(p[-1]),
                        roll=float(r[-1]), fx=float(f[-1]))
    return poses(eye, yaw, pitch, roll), fx


def handheld_noise(c2w: np.ndarray, rng: np.random.Generator, fps: float) -> np.ndarray:
    """Add a handheld operator's sway: smooth, low-amplitude, from ``rng`` (seeded).

    Each of yaw, pitch, roll and the three position axes is a sum of three sines of random
    frequency (0.3 to 1.2 Hz) and phase; the amplitudes (0.3 deg for yaw and pitch, 0.2 deg for
    roll, 6 mm for position) keep each axis's angular speed under 2.3 deg/s, below the 3 deg/s
    pan/tilt/roll threshold of the motion labels. c2w: (N, 4, 4) -> (N, 4, 4).
    """
    n = len(c2w)
    t = np.arange(n) / fps
    frequencies = rng.uniform(0.3, 1.2, size=(6, 3))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(6, 3))
    weights = rng.dirichlet(np.ones(3), size=6)  # (6, 3), rows sum to 1
    waves = np.sin(2.0 * np.pi * frequencies[:, :, None] * t + phases[:, :, None])
    signal = (weights[:, :, None] * waves).sum(axis=1)  # (6, N), |signal| <= 1
    amplitude = np.array([np.deg2rad(0.3), np.deg2rad(0.3), np.deg2rad(0.2), 0.006, 0.006, 0.006])
    signal = signal * amplitude[:, None]
    rotations = c2w[:, :3, :3]
    # Small rotations about the camera's own y (pan), x (tilt) and z (roll) axes.
    jitter = camera_rotations(np.pi / 2 - signal[0], -signal[1], signal[2])
    # camera_rotations(pi/2, 0, 0) is the rotation taking camera axes to x, -z, y; undo it.
    level = camera_rotations(np.array([np.pi / 2]), np.zeros(1), np.zeros(1))[0]
    out = c2w.copy()
    out[:, :3, :3] = rotations @ (level.T @ jitter)
    out[:, :3, 3] += signal[3:].T
    return out
