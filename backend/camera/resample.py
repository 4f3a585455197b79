"""Resampling camera paths from a scene's timeline to a model's frames.

A shot lives on the scene's timeline (its own fps, integer frames); a video model wants a fixed
number of frames (Wan: ``4k + 1``, grouped four to a latent frame, the first latent frame holding
frame 0 alone). Poses are interpolated on SE(3) the simple, well-behaved way: rotations by slerp,
camera centres by lerp (:class:`scipy.spatial.transform.Slerp`). Intrinsics are interpolated
linearly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from backend.camera.se3 import make_pose

WAN_TEMPORAL_COMPRESSION = 4


def _check_times(times: np.ndarray, name: str) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(times) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError(f"{name} must be finite")
    return times


def _check_query(times: np.ndarray, query: np.ndarray) -> np.ndarray:
    query = _check_times(query, "new_times")
    if np.any(np.diff(times) <= 0):
        raise ValueError("times must be strictly increasing")
    span = max(times[-1] - times[0], 1.0)
    tolerance = 1e-9 * span
    if query.min() < times[0] - tolerance or query.max() > times[-1] + tolerance:
        raise ValueError(f"new_times [{query.min()}, {query.max()}] leave the sampled range "
                         f"[{times[0]}, {times[-1]}]; resampling never extrapolates")
    return np.clip(query, times[0], times[-1])


def resample_poses(c2w: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Interpolate poses c2w (N, 4, 4) sampled at ``times`` (N,) to ``new_times`` (M,) -> (M, 4, 4).

    Rotation: slerp between neighbouring samples; translation (camera centre): lerp. A single
    sample is held constant (only its own time may be asked for).
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    times = _check_times(times, "times")
    if c2w.shape != (len(times), 4, 4):
        raise ValueError(f"c2w must have shape ({len(times)}, 4, 4) to match times, "
                         f"got {c2w.shape}")
    query = _check_query(times, new_times)
    if len(times) == 1:
        return np.repeat(c2w, len(query), axis=0)
    rotations = Slerp(times, Rotation.from_matrix(c2w[:, :3, :3]))(query).as_matrix()
    centres = np.stack([np.interp(query, times, c2w[:, axis, 3]) for axis in range(3)], axis=-1)
    return make_pose(rotations, centres)


def resample_linear(values: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Linearly interpolate per-sample rows, values (N, ...) at ``times`` (N,) -> (M, ...)."""
    values = np.asarray(values, dtype=np.float64)
    times = _check_times(times, "times")
    if len(values) != len(times):
        raise ValueError(f"values has {len(values)} rows but times has {len(times)}")
    query = _check_query(times, new_times)
    if len(times) == 1:
        return np.repeat(values, len(query), axis=0)
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(query, times, flat[:, j]) for j in range(flat.shape[1])], axis=-1)
    return out.reshape((len(query), *values.shape[1:]))


def times_for_count(num_source: int, num_target: int) -> np.ndarray:
    """Source-frame positions (in source frames from 0) of ``num_target`` samples spanning the shot.

    The first and last target frames sit on the first and last source frames.
    """
    if num_source < 1 or num_target < 1:
        raise ValueError(f"frame counts must be positive, got {num_source} and {num_target}")
    if num_target == 1:
        return np.zeros(1)
    return np.linspace(0.0, num_source - 1, num_target)


def times_for_fps(num_source: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Source-frame positions of samples taken at ``target_fps`` from the shot's first frame.

    The shot's duration is kept; the last sample falls on or before the last source frame.
    """
    if num_source < 1:
        raise ValueError(f"num_source must be positive, got {num_source}")
    if source_fps <= 0 or target_fps <= 0:
        raise ValueError(f"fps must be positive, got {source_fps} and {target_fps}")
    step = source_fps / target_fps
    count = int(np.floor((num_source - 1) / step + 1e-9)) + 1
    return np.arange(count) * step


def resample_shot(
    c2w: np.ndarray, K: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Resample poses (N, 4, 4) and intrinsics (N, 4) at source-frame ``positions`` (M,)."""
    frames = np.arange(len(c2w), dtype=np.float64)
    return resample_poses(c2w, frames, positions), resample_linear(K, frames, positions)


def wan_num_frames(num_frames: int, rounding: Literal["nearest", "down", "up"] = "nearest") -> int:
    """A frame count Wan accepts (``4k + 1``, at least 1) near ``num_frames``."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    k = (num_frames - 1) / WAN_TEMPORAL_COMPRESSION
    if rounding == "nearest":
        k = np.floor(k + 0.5)
    elif rounding == "down":
        k = np.floor(k)
    elif rounding == "up":
        k = np.ceil(k)
    else:
        raise ValueError(f"rounding must be 'nearest', 'down' or 'up', got {rounding!r}")
    return int(k) * WAN_TEMPORAL_COMPRESSION + 1


def num_latent_frames(num_frames: int, compression: int = WAN_TEMPORAL_COMPRESSION) -> int:
    """Latent frames of a causal video VAE: frame 0 alone, then one per ``compression`` frames."""
    if num_frames < 1 or (num_frames - 1) % compression:
        raise ValueError(f"num_frames must be {compression}k + 1, got {num_frames}")
    return (num_frames - 1) // compression + 1


def latent_frame_groups(
    num_frames: int, compression: int = WAN_TEMPORAL_COMPRESSION
) -> list[np.ndarray]:
    """Video-frame indices of each latent frame: ``[0], [1..4], [5..8], ...`` for compression 4."""
    count = num_latent_frames(num_frames, compression)
    return [np.array([0])] + [np.arange(1 + compression * (i - 1), 1 + compression * i)
                              for i in range(1, count)]
