"""Blender camera math without ``bpy``: lens/sensor/shift/fit <-> pixel intrinsics, axes, poses.

This module is imported both inside Blender (by ``scene_io``) and by plain tests, so it uses only
numpy and the standard library. The conventions are those of ShotBridge (the same as
``backend/camera/conventions.py``, which the add-on cannot import):

World frame
    Blender's world: right-handed, +Z up.

Camera axes
    Blender camera objects use +x right, +y up and look down -z. ShotBridge poses use **OpenCV**
    camera axes: +x right, +y down, +z forward. The two differ by a rotation of pi about the
    camera's x axis, ``c2w_cv = matrix_world_without_scale @ diag(1, -1, -1, 1)``, and that flip is
    written once, in :func:`flip_camera_axes`.

Intrinsics
    ``K = [fx, fy, cx, cy]`` in pixels at the render size ``(W, H)`` (resolution percentage
    applied). Pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``, so a centred principal
    point is ``(W / 2, H / 2)``; ``v`` grows downwards.

Blender's view plane (``BKE_camera_params_compute_viewplane``), perspective cameras:
    * the fit is resolved from the *aspect-corrected* render size: AUTO means HORIZONTAL when
      ``pixel_aspect_x * W >= pixel_aspect_y * H``, else VERTICAL;
    * the sensor size is picked by the *unresolved* enum: ``sensor_height`` only for VERTICAL,
      ``sensor_width`` for HORIZONTAL and AUTO (even when AUTO resolves to vertical);
    * ``viewfac = W`` for a horizontal fit, ``ycor * H`` for a vertical one, with
      ``ycor = pixel_aspect_y / pixel_aspect_x``; the focal length is ``lens / sensor * viewfac``
      in x-pixels and the shifts move the plane by ``shift * viewfac`` x-pixels in both directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")

# Blender camera axes (+y up, -z forward) <-> OpenCV camera axes (+y down, +z forward).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])

# Hard limits of the RNA properties (Blender silently clamps values set outside them).
_MIN_LENS_MM = 1.0
_MIN_SENSOR_MM = 1.0
_MAX_PIXEL_ASPECT = 200.0
_RESOLUTION_RANGE = (4, 65536)


@dataclass(frozen=True)
class BlenderCamera:
    """The Blender settings that decide a perspective camera's pixel intrinsics.

    Field names follow ``bpy.types.Camera`` and ``bpy.types.RenderSettings``.
    """

    lens: float
    """Focal length in millimetres (``Camera.lens``)."""
    sensor_width: float
    """Sensor width in millimetres (``Camera.sensor_width``)."""
    sensor_height: float
    """Sensor height in millimetres (``Camera.sensor_height``); used only by the VERTICAL fit."""
    sensor_fit: str = "AUTO"
    """``"AUTO"``, ``"HORIZONTAL"`` or ``"VERTICAL"`` (``Camera.sensor_fit``)."""
    shift_x: float = 0.0
    """Horizontal lens shift in units of the fitted view size (``Camera.shift_x``)."""
    shift_y: float = 0.0
    """Vertical lens shift in units of the fitted view size (``Camera.shift_y``)."""
    resolution_x: int = 1920
    """Render width in pixels before the percentage (``RenderSettings.resolution_x``)."""
    resolution_y: int = 1080
    """Render height in pixels before the percentage (``RenderSettings.resolution_y``)."""
    resolution_percentage: int = 100
    """Render size scale in percent (``RenderSettings.resolution_percentage``)."""
    pixel_aspect_x: float = 1.0
    """Horizontal pixel aspect (``RenderSettings.pixel_aspect_x``)."""
    pixel_aspect_y: float = 1.0
    """Vertical pixel aspect (``RenderSettings.pixel_aspect_y``)."""

    def __post_init__(self) -> None:
        for name in ("lens", "sensor_width", "sensor_height", "pixel_aspect_x", "pixel_aspect_y"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("shift_x", "shift_y"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        for name in ("resolution_x", "resolution_y", "resolution_percentage"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.sensor_fit not in SENSOR_FITS:
            raise ValueError(f"sensor_fit must be one of {SENSOR_FITS}, got {self.sensor_fit!r}")
        width, height = render_size(self)
        if width == 0 or height == 0:
            raise ValueError(
                "resolution_percentage gives an empty render size: "
                f"{self.resolution_x}x{self.resolution_y} at {self.resolution_percentage}%"
            )


def render_size(cam: BlenderCamera) -> tuple[int, int]:
    """Render size ``(W, H)`` in pixels, as Blender computes it: ``res * percentage // 100``."""
    percentage = int(cam.resolution_percentage)
    return (int(cam.resolution_x) * percentage // 100, int(cam.resolution_y) * percentage // 100)


def resolved_sensor_fit(cam: BlenderCamera) -> str:
    """``"HORIZONTAL"`` or ``"VERTICAL"``: the fit Blender uses at the render size.

    AUTO compares the aspect-corrected size, ``pixel_aspect_x * W >= pixel_aspect_y * H``.
    """
    if cam.sensor_fit != "AUTO":
        return cam.sensor_fit
    width, height = render_size(cam)
    if cam.pixel_aspect_x * width >= cam.pixel_aspect_y * height:
        return "HORIZONTAL"
    return "VERTICAL"


def intrinsics_from_blender(cam: BlenderCamera) -> np.ndarray:
    """Pixel intrinsics of a perspective Blender camera at its render size.

    Returns ``K = [fx, fy, cx, cy]`` (4,) float64 in the ShotBridge convention (y down, pixel
    centres at +0.5).
    """
    width, height = render_size(cam)
    ycor = cam.pixel_aspect_y / cam.pixel_aspect_x
    # The sensor size follows the enum as set (AUTO uses the width), the scale the resolved fit.
    sensor = cam.sensor_height if cam.sensor_fit == "VERTICAL" else cam.sensor_width
    viewfac = width if resolved_sensor_fit(cam) == "HORIZONTAL" else ycor * height
    fx = cam.lens / sensor * viewfac
    # A y-pixel covers ycor times the height of an x-pixel, so y lengths in x-pixels divide by it.
    fy = fx / ycor
    # Shift moves the view plane (right, up) by shift * viewfac x-pixels; v grows downwards.
    cx = 0.5 * width - cam.shift_x * viewfac
    cy = 0.5 * height + cam.shift_y * viewfac / ycor
    return np.array([fx, fy, cx, cy], dtype=np.float64)


def blender_from_intrinsics(
    K: np.ndarray, width: int, height: int, *, sensor_width: float = 36.0
) -> BlenderCamera:
    """Blender camera settings that reproduce pixel intrinsics exactly (the inverse for import).

    K: (4,) ``[fx, fy, cx, cy]`` at render size ``(width, height)``. The result has resolution
    percentage 100, the pixel aspect from ``fx / fy`` (the smaller aspect value is 1, as Blender
    prefers), an explicit fit (HORIZONTAL for aspect-corrected landscape, VERTICAL otherwise) and a
    sensor whose height matches the image aspect, so either fit gives the same lens.
    Raises ``ValueError`` when Blender could not hold the result (it would clamp it silently).
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (4,) or not np.all(np.isfinite(K)):
        raise ValueError(f"K must be 4 finite numbers [fx, fy, cx, cy], got {K!r}")
    fx, fy, cx, cy = (float(v) for v in K)
    if fx <= 0 or fy <= 0:
        raise ValueError(f"K focal lengths must be > 0, got fx={fx}, fy={fy}")
    if not (math.isfinite(sensor_width) and sensor_width > 0):
        raise ValueError(f"sensor_width must be a finite number > 0, got {sensor_width!r}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    width, height = int(width), int(height)

    # ycor = pixel_aspect_y / pixel_aspect_x = fx / fy.
    if fx <= fy:
        pixel_aspect_x, pixel_aspect_y = fy / fx, 1.0
    else:
        pixel_aspect_x, pixel_aspect_y = 1.0, fx / fy
    ycor = pixel_aspect_y / pixel_aspect_x
    landscape = pixel_aspect_x * width >= pixel_aspect_y * height
    viewfac = width if landscape else ycor * height
    # With sensor_height / sensor_width = (ycor * H) / W both fits give lens = fx * sensor_w / W.
    sensor_height = sensor_width * ycor * height / width
    sensor = sensor_width if landscape else sensor_height
    if landscape:  # unused by a horizontal fit; kept within Blender's limit for wide panoramas
        sensor_height = max(sensor_height, _MIN_SENSOR_MM)
    cam = BlenderCamera(
        lens=fx * sensor / viewfac,
        sensor_width=sensor_width,
        sensor_height=sensor_height,
        sensor_fit="HORIZONTAL" if landscape else "VERTICAL",
        shift_x=(0.5 * width - cx) / viewfac,
        shift_y=(cy - 0.5 * height) * ycor / viewfac,
        resolution_x=width,
        resolution_y=height,
        resolution_percentage=100,
        pixel_aspect_x=pixel_aspect_x,
        pixel_aspect_y=pixel_aspect_y,
    )
    _check_blender_limits(cam)
    return cam


def _check_blender_limits(cam: BlenderCamera) -> None:
    """Raise ``ValueError`` naming the first setting outside Blender's hard property limits."""
    if cam.lens < _MIN_LENS_MM:
        raise ValueError(
            f"lens {cam.lens:.4g} mm is below Blender's {_MIN_LENS_MM} mm (fx too small)"
        )
    for name in ("sensor_width", "sensor_height"):
        if getattr(cam, name) < _MIN_SENSOR_MM:
            raise ValueError(f"{name} {getattr(cam, name):.4g} mm is below Blender's minimum")
    for name in ("pixel_aspect_x", "pixel_aspect_y"):
        if getattr(cam, name) > _MAX_PIXEL_ASPECT:
            raise ValueError(f"{name} {getattr(cam, name):.4g} (fx / fy) exceeds Blender's maximum")
    low, high = _RESOLUTION_RANGE
    for name in ("resolution_x", "resolution_y"):
        if not low <= getattr(cam, name) <= high:
            raise ValueError(
                f"{name} {getattr(cam, name)} is outside Blender's range {low}..{high}"
            )


def flip_camera_axes(c2w: np.ndarray) -> np.ndarray:
    """Swap camera axes between Blender/OpenGL (+y up, -z forward) and OpenCV (+y down, +z fwd).

    The same convention as ``backend/camera/conventions.py`` (``c2w @ diag(1, -1, -1, 1)``); it is
    its own inverse. c2w: (..., 4, 4) -> (..., 4, 4); the world frame does not change.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w must have shape (..., 4, 4), got {c2w.shape}")
    return c2w @ _FLIP_YZ


def nearest_rotation(linear: np.ndarray) -> np.ndarray:
    """Rotation factor of the polar decomposition (scale and shear removed): (..., 3, 3)."""
    u, _, vt = np.linalg.svd(linear)
    return u @ vt


def c2w_from_matrix_world(matrix_world: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world pose from a Blender camera's ``matrix_world``.

    matrix_world: (4, 4) or (N, 4, 4), any object/parent scale (a ``mathutils.Matrix`` works too).
    Returns the same shape, float64. Scale is removed by the polar decomposition, so a matrix with
    only per-axis scale gives its normalised columns and a sheared one the nearest rotation.
    Mirrored (negative determinant) and degenerate matrices raise ``ValueError``.
    """
    matrix = np.asarray(matrix_world, dtype=np.float64)
    if matrix.shape[-2:] != (4, 4) or matrix.ndim not in (2, 3):
        raise ValueError(f"matrix_world must have shape (4, 4) or (N, 4, 4), got {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("matrix_world must be finite")
    stack = matrix.reshape(-1, 4, 4)
    if not np.allclose(stack[:, 3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError("matrix_world must be affine (last row 0, 0, 0, 1)")
    linear = stack[:, :3, :3]
    det = np.linalg.det(linear)
    scale = np.abs(linear).max(axis=(1, 2))
    if np.any(det <= 1e-12 * scale**3):
        raise ValueError("matrix_world must have a positive, non-degenerate scale (no mirroring)")
    pose = np.zeros_like(stack)
    pose[:, :3, :3] = nearest_rotation(linear)
    pose[:, :3, 3] = stack[:, :3, 3]
    pose[:, 3, 3] = 1.0
    return flip_camera_axes(pose).reshape(matrix.shape)


def matrix_world_from_c2w(c2w: np.ndarray) -> np.ndarray:
    """Blender ``matrix_world`` (unit scale) from an OpenCV camera-to-world pose.

    c2w: (4, 4) or (N, 4, 4) -> same shape, float64.
    """
    return flip_camera_axes(c2w)


def project_points(
    K: np.ndarray, c2w: np.ndarray, points_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of world points in the ShotBridge convention.

    K: (4,) ``[fx, fy, cx, cy]``; c2w: (4, 4) rigid OpenCV camera-to-world; points_world: (M, 3).
    Returns ``uv`` (M, 2) in pixels (y down) and ``depth`` (M,), the camera-space z (> 0 in front
    of the camera). ``uv`` is meaningless where ``depth <= 0`` (inf where it is 0).
    """
    fx, fy, cx, cy = np.asarray(K, dtype=np.float64)
    c2w = np.asarray(c2w, dtype=np.float64)
    points = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    rotation, origin = c2w[:3, :3], c2w[:3, 3]
    # (M, 3) world -> (M, 3) camera: R^T (p - t) for a rigid pose.
    points_cam = (points - origin) @ rotation
    depth = points_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = fx * points_cam[:, 0] / depth + cx
        v = fy * points_cam[:, 1] / depth + cy
    return np.stack([u, v], axis=-1), depth


def project_tracks(
    K: np.ndarray, c2w: np.ndarray, points_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project one point per frame through that frame's camera.

    K: (N, 4); c2w: (N, 4, 4) rigid OpenCV camera-to-world; points_world: (N, 3).
    Returns ``uv`` (N, 2) in pixels (y down) and ``depth`` (N,) as :func:`project_points` does.
    """
    K = np.asarray(K, dtype=np.float64)
    c2w = np.asarray(c2w, dtype=np.float64)
    points = np.asarray(points_world, dtype=np.float64)
    # (N, 3) world -> (N, 3) camera: R^T (p - t) per frame.
    points_cam = np.einsum("nji,nj->ni", c2w[:, :3, :3], points - c2w[:, :3, 3])
    depth = points_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = K[:, :2] * points_cam[:, :2] / depth[:, None] + K[:, 2:]
    return uv, depth
