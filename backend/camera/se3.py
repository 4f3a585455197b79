"""SE(3) on numpy arrays: inverses, relative poses, scale normalisation.

Poses are camera-to-world ``(N, 4, 4)`` with OpenCV camera axes (:mod:`backend.camera.conventions`).
Rotations go through :mod:`scipy.spatial.transform`; nothing here hand-writes quaternion algebra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

ScaleMode = Literal["none", "max_norm", "first_distance"]
SCALE_MODES: tuple[str, ...] = ("none", "max_norm", "first_distance")


def _as_poses(c2w: np.ndarray, name: str = "c2w") -> np.ndarray:
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.ndim < 2 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have shape (..., 4, 4), got {c2w.shape}")
    return c2w


def make_pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Build poses from rotations (..., 3, 3) and translations (..., 3) -> (..., 4, 4)."""
    rotation = np.asarray(rotation, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    shape = np.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1])
    pose = np.zeros((*shape, 4, 4))
    pose[..., :3, :3] = rotation
    pose[..., :3, 3] = translation
    pose[..., 3, 3] = 1.0
    return pose


def inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms (..., 4, 4): ``[Rᵀ | -Rᵀ t]``, exact for rotations."""
    pose = _as_poses(pose, "pose")
    rotation_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    return make_pose(rotation_t, -(rotation_t @ pose[..., :3, 3:4])[..., 0])


def relative_to(c2w: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Express poses in the frame of ``reference``: ``inv(reference) @ c2w[i]``.

    c2w: (N, 4, 4); reference: (4, 4) -> (N, 4, 4). The reference itself becomes the identity.
    """
    return inverse(_as_poses(reference, "reference")) @ _as_poses(c2w)


def relative_to_first(c2w: np.ndarray) -> np.ndarray:
    """``c2w_rel[i] = inv(c2w[0]) @ c2w[i]`` for one shot, c2w: (N, 4, 4) -> (N, 4, 4)."""
    c2w = _as_poses(c2w)
    return relative_to(c2w, c2w[0])


def relative_to_first_shot(shots_c2w: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Multi-shot relative poses in ONE shared frame: frame 0 of the first shot is the origin.

    shots_c2w: per shot (N_i, 4, 4) -> per shot (N_i, 4, 4). ShotVerse needs the shared frame so
    that cuts keep their spatial relation; re-basing each shot on its own first frame would lose it.
    """
    if not shots_c2w:
        raise ValueError("shots_c2w must hold at least one shot")
    reference = _as_poses(shots_c2w[0], "shots_c2w[0]")[0]
    return [relative_to(_as_poses(c2w, f"shots_c2w[{i}]"), reference)
            for i, c2w in enumerate(shots_c2w)]


def normalize_scale(
    c2w: np.ndarray,
    mode: ScaleMode,
    *,
    reference_point: np.ndarray | None = None,
    eps: float = 1e-8,
) -> tuple[np.ndarray, float]:
    """Rescale camera translations; returns ``(c2w_scaled, scale)`` with ``t_scaled = t / scale``.

    c2w: (N, 4, 4), usually already relative to the first frame. Modes, always explicit:

    - ``"none"``: metric as given (CameraCtrl); scale = 1.
    - ``"max_norm"``: the camera centre farthest from the origin lands at distance 1 (GenDoP,
      CamI2V evaluation); a camera that never leaves the origin keeps scale 1.
    - ``"first_distance"``: the first camera's distance to ``reference_point`` (world (3,), e.g. the
      subject or the look-at point) becomes 1 (Uni3C's unit "distance to the foreground centre").

    The scale is returned so that a caller can carry it (and undo it with ``scale * t``).
    """
    c2w = _as_poses(c2w)
    if mode not in SCALE_MODES:
        raise ValueError(f"mode must be one of {SCALE_MODES}, got {mode!r}")
    if mode != "first_distance" and reference_point is not None:
        raise ValueError(f"reference_point is only used by mode 'first_distance', not {mode!r}")
    if mode == "none":
        scale = 1.0
    elif mode == "max_norm":
        norms = np.linalg.norm(c2w[..., :3, 3], axis=-1)
        scale = float(norms.max()) if norms.size and norms.max() > eps else 1.0
    else:
        if reference_point is None:
            raise ValueError("mode 'first_distance' needs reference_point (3,)")
        point = np.asarray(reference_point, dtype=np.float64)
        if point.shape != (3,):
            raise ValueError(f"reference_point must have shape (3,), got {point.shape}")
        scale = float(np.linalg.norm(c2w[(0,) * (c2w.ndim - 2)][:3, 3] - point))
        if scale <= eps:
            raise ValueError("mode 'first_distance': the first camera sits on reference_point")
    scaled = c2w.copy()
    scaled[..., :3, 3] /= scale
    return scaled, scale


def rotation_angle(rotation_a: np.ndarray, rotation_b: np.ndarray) -> np.ndarray:
    """Geodesic angle in radians between rotations (..., 3, 3) -> (...)."""
    relative = np.swapaxes(np.asarray(rotation_a), -1, -2) @ np.asarray(rotation_b)
    flat = relative.reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).magnitude().reshape(relative.shape[:-2])
