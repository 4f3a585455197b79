"""Coordinate conventions of ShotBridge, stated once.

World frame
    The source scene's world: right-handed, +Z up (Blender), lengths in metres.

Camera axes
    Canonical (ShotSequence, RealEstate10K, CameraCtrl, VideoX-Fun): **OpenCV** -- +x right,
    +y down, +z forward (the camera looks along +z).
    OpenGL / Blender / nerfstudio / NeRF ``transforms.json``: +x right, +y up, -z forward.
    The two differ by a rotation of pi about the camera's x axis:
    ``c2w_gl = c2w_cv @ diag(1, -1, -1, 1)``.
    That flip is its own inverse, and it is written here and nowhere else.

Poses
    ``c2w`` is camera-to-world (4, 4); ``w2c = inv(c2w)``. Stacks are ``(N, 4, 4)``.

Intrinsics
    ``K = [fx, fy, cx, cy]`` in pixels at the render resolution ``(W, H)``. Continuous image
    coordinates: pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``, so a centred principal
    point is ``(W / 2, H / 2)``. A camera-space point ``(x, y, z)`` (OpenCV axes, z > 0) lands at
    ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
"""

from __future__ import annotations

import numpy as np

_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """Change the camera axes of camera-to-world poses from OpenCV to OpenGL, or back (involution).

    c2w: (..., 4, 4) -> (..., 4, 4). Only the camera's own axes change; the world frame does not.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w must have shape (..., 4, 4), got {c2w.shape}")
    return c2w @ _FLIP_YZ


opengl_to_opencv = opencv_to_opengl
