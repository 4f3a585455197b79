"""nerfstudio ``camera_path.json`` (the viewer's render path), read and write.

Layout: ``render_width``, ``render_height``, ``fps``, ``seconds``, ``camera_type`` and
``camera_path``: one entry per rendered frame with ``camera_to_world`` (16 numbers, row-major 4x4,
OpenGL camera axes) and ``fov`` (the *vertical* field of view in degrees). nerfstudio derives
``fx = fy = (H / 2) / tan(fov / 2)`` with the principal point at the image centre, so only such
cameras can be written; anything else is refused rather than silently changed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from backend.camera.conventions import opencv_to_opengl, opengl_to_opencv
from backend.shots import Shot


class NerfstudioError(ValueError):
    """A malformed or unsupported camera path; the message names the file and field."""


def _fail(path: Path, field: str, message: str) -> None:
    raise NerfstudioError(f"{path}: {field}: {message}")


def read(
    path: str | Path, *, name: str, frame_start: int = 0
) -> tuple[Shot, tuple[int, int], float]:
    """Parse a camera path into ``(shot, (W, H), fps)``; the Shot is not validated yet."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise NerfstudioError(f"{path}: not valid JSON: {error}") from None
    for key in ("render_width", "render_height", "camera_path"):
        if key not in data:
            _fail(path, key, "missing")
    camera_type = data.get("camera_type", "perspective")
    if camera_type != "perspective":
        _fail(path, "camera_type", f"{camera_type!r} is not supported (perspective only)")
    width, height = int(data["render_width"]), int(data["render_height"])
    fps = data.get("fps")
    frames = data["camera_path"]
    if not isinstance(frames, list) or not frames:
        _fail(path, "camera_path", "must be a non-empty list")
    c2w_gl = np.zeros((len(frames), 4, 4))
    fov = np.zeros(len(frames))
    for i, frame in enumerate(frames):
        try:
            matrix = np.asarray(frame["camera_to_world"], dtype=np.float64)
            fov[i] = float(frame["fov"])
        except (KeyError, TypeError, ValueError) as error:
            _fail(path, f"camera_path[{i}]",
                  f"needs camera_to_world (16 numbers) and fov ({error})")
        if matrix.size != 16:
            _fail(path, f"camera_path[{i}].camera_to_world",
                  f"expected 16 numbers, got {matrix.size}")
        c2w_gl[i] = matrix.reshape(4, 4)
    if np.any((fov <= 0) | (fov >= 180)):
        _fail(path, "camera_path[].fov", "must lie strictly between 0 and 180 degrees")
    focal = (height / 2) / np.tan(np.radians(fov) / 2)
    centre = np.ones_like(focal)
    K = np.stack([focal, focal, centre * width / 2, centre * height / 2], axis=-1)
    shot = Shot(name=name, camera=name, frame_start=frame_start,
                frame_end=frame_start + len(frames) - 1, c2w=opengl_to_opencv(c2w_gl), K=K)
    return shot, (width, height), (float(fps) if fps is not None else math.nan)


def write(shot: Shot, resolution: tuple[int, int], fps: float, path: str | Path) -> Path:
    """Write one shot as a camera path; refuses intrinsics nerfstudio cannot express."""
    path = Path(path)
    width, height = resolution
    fx, fy, cx, cy = shot.K.T
    tolerance = 1e-6
    if np.any(np.abs(fx - fy) > tolerance * fy):
        raise NerfstudioError(f"shot {shot.name!r}: K has fx != fy (non-square pixels); "
                              "nerfstudio's camera path cannot express that")
    if np.any(np.abs(cx - width / 2) > 1e-6) or np.any(np.abs(cy - height / 2) > 1e-6):
        raise NerfstudioError(f"shot {shot.name!r}: the principal point is off-centre (lens "
                              "shift); nerfstudio's camera path cannot express that")
    fov = np.degrees(2 * np.arctan((height / 2) / fy))
    c2w_gl = opencv_to_opengl(shot.c2w)
    frames: list[dict[str, Any]] = [
        {"camera_to_world": c2w_gl[i].ravel().tolist(), "fov": float(fov[i]),
         "aspect": width / height}
        for i in range(shot.num_frames)
    ]
    data = {
        "camera_type": "perspective", "render_width": int(width), "render_height": int(height),
        "fps": float(fps), "seconds": shot.num_frames / fps, "is_cycle": False,
        "smoothness_value": 0.0, "crop": None, "camera_path": frames,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
