"""NeRF / instant-ngp / nerfstudio-data ``transforms.json``, read and write.

Layout: shared intrinsics ``fl_x fl_y cx cy w h`` at the top (any of them may be overridden per
frame), or only ``camera_angle_x`` (the original NeRF synthetic scenes: horizontal field of view in
radians), and ``frames``: one entry per image with ``file_path`` and ``transform_matrix`` (4x4
camera-to-world, OpenGL camera axes). Lens distortion and non-pinhole camera models are refused:
a ShotSequence is pinhole, and dropping distortion silently would move every pixel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from backend.camera.conventions import opencv_to_opengl, opengl_to_opencv
from backend.shots import Shot

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")


class TransformsError(ValueError):
    """A malformed or unsupported transforms.json; the message names the file and field."""


def _fail(path: Path, field: str, message: str) -> None:
    raise TransformsError(f"{path}: {field}: {message}")


def _number(path: Path, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, field, f"expected a number, got {value!r}")
    return float(value)


def read(path: str | Path, *, name: str, frame_start: int = 0, width: int | None = None,
         height: int | None = None) -> tuple[Shot, tuple[int, int], float]:
    """Parse into ``(shot, (W, H), fps)``; fps is NaN unless the file carries one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise TransformsError(f"{path}: not valid JSON: {error}") from None
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        _fail(path, "frames", "must be a non-empty list")
    model = data.get("camera_model", "OPENCV")
    if model not in PINHOLE_MODELS:
        _fail(path, "camera_model", f"{model!r} is not supported (pinhole models only)")
    width = int(data["w"]) if "w" in data else width
    height = int(data["h"]) if "h" in data else height
    if width is None or height is None:
        _fail(path, "w/h", "missing from the file; give the resolution (--width/--height)")
    c2w_gl = np.zeros((len(frames), 4, 4))
    K = np.zeros((len(frames), 4))
    for i, frame in enumerate(frames):
        merged = {**data, **frame}
        for key in DISTORTION_KEYS:
            if merged.get(key, 0.0) != 0.0:
                where = f"frames[{i}].{key}" if key in frame else key
                _fail(path, where, "lens distortion is not supported")
        if "fl_x" in merged:
            fl_x = _number(path, f"frames[{i}].fl_x", merged["fl_x"])
            fl_y = _number(path, f"frames[{i}].fl_y", merged.get("fl_y", fl_x))
        elif "camera_angle_x" in merged:
            fl_x = 0.5 * width / math.tan(0.5 * _number(path, "camera_angle_x",
                                                         merged["camera_angle_x"]))
            fl_y = (0.5 * height / math.tan(0.5 * _number(path, "camera_angle_y",
                                                          merged["camera_angle_y"]))
                    if "camera_angle_y" in merged else fl_x)
        else:
            _fail(path, f"frames[{i}]", "no intrinsics: needs fl_x (and fl_y) or camera_angle_x")
        cx = _number(path, f"frames[{i}].cx", merged.get("cx", width / 2))
        cy = _number(path, f"frames[{i}].cy", merged.get("cy", height / 2))
        K[i] = (fl_x, fl_y, cx, cy)
        matrix = np.asarray(frame.get("transform_matrix"), dtype=np.float64)
        if matrix.shape != (4, 4):
            _fail(path, f"frames[{i}].transform_matrix", f"expected 4x4, got shape {matrix.shape}")
        c2w_gl[i] = matrix
    fps = data.get("fps")
    shot = Shot(name=name, camera=name, frame_start=frame_start,
                frame_end=frame_start + len(frames) - 1, c2w=opengl_to_opencv(c2w_gl), K=K)
    return shot, (width, height), (float(fps) if fps is not None else math.nan)


def write(shot: Shot, resolution: tuple[int, int], fps: float, path: str | Path) -> Path:
    """Write one shot; shared intrinsics when constant over the shot, per frame otherwise."""
    path = Path(path)
    width, height = resolution
    constant = bool(np.all(shot.K[0] == shot.K))
    c2w_gl = opencv_to_opengl(shot.c2w)
    frames = []
    for i, frame in enumerate(shot.frames):
        entry: dict[str, Any] = {"file_path": f"images/frame_{frame:05d}.png",
                                 "transform_matrix": c2w_gl[i].tolist()}
        if not constant:
            entry.update(zip(("fl_x", "fl_y", "cx", "cy"), map(float, shot.K[i]), strict=True))
        frames.append(entry)
    data: dict[str, Any] = {"camera_model": "OPENCV", "w": int(width), "h": int(height)}
    if constant:
        data.update(zip(("fl_x", "fl_y", "cx", "cy"), map(float, shot.K[0]), strict=True))
    # Not part of the NeRF layout; readers ignore unknown keys, and it saves asking for --fps.
    data["fps"] = float(fps)
    data["frames"] = frames
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
