"""Incoming ShotSequence data, checked without bpy: untrusted dict -> arrays, or an error naming
the field.

The add-on cannot import the backend's ``backend/shots.py``; this is the part of that contract the
importer needs (format, version, frame ranges, shapes, finite numbers, rotations), with messages in
the same "shots[i] 'name'.field: what is wrong" form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import camera_model

FORMAT = "shotbridge.shot_sequence"
VERSION = 1
ROTATION_TOLERANCE = 1e-4  # max |RᵀR - I| of a pose, as backend/shots.py
# Blender's hard limits on the scene frame range.
FRAME_RANGE = (0, 1048574)


class ShotDataError(ValueError):
    """Invalid ShotSequence data; the message starts with the field's path."""




@dataclass
class LensBlock:
    """Blender lens settings of a shot, per frame where they animate."""

    lens: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    sensor_width: float
    sensor_height: float
    sensor_fit: str


@dataclass
class ShotData:
    """One shot, checked."""

    path: str
    name: str
    prompt: str
    frame_start: int
    frame_end: int
    c2w: np.ndarray
    K: np.ndarray
    lens: LensBlock | None


def _fail(path: str, message: str) -> None:
    raise ShotDataError(f"{path}: {message}")


def _number(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, f"expected a finite number, got {value!r}")
    return float(value)


def _integer(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"expected an integer, got {value!r}")
    return value


def _array(path: str, value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(path, f"expected {what}, not a rectangular array of numbers")
    if array.shape != shape:
        _fail(path, f"expected shape {shape} ({what}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = tuple(np.argwhere(~np.isfinite(array))[0])
        _fail(path + "".join(f"[{i}]" for i in bad), f"value {array[bad]} is not finite")
    return array


def _lens_block(path: str, data: Any, n: int, what: str) -> LensBlock:
    if not isinstance(data, dict):
        _fail(path, f"expected an object, got {type(data).__name__}")
    for key in ("lens", "shift_x", "shift_y", "sensor_width", "sensor_height", "sensor_fit"):
        if key not in data:
            _fail(f"{path}.{key}", "missing")
    block = LensBlock(
        lens=_array(f"{path}.lens", data["lens"], (n,), what),
        shift_x=_array(f"{path}.shift_x", data["shift_x"], (n,), what),
        shift_y=_array(f"{path}.shift_y", data["shift_y"], (n,), what),
        sensor_width=_number(f"{path}.sensor_width", data["sensor_width"]),
        sensor_height=_number(f"{path}.sensor_height", data["sensor_height"]),
        sensor_fit=data["sensor_fit"],
    )
    if np.any(block.lens <= 0) or block.sensor_width <= 0 or block.sensor_height <= 0:
        _fail(path, "lens and sensor sizes must be positive")
    if block.sensor_fit not in camera_model.SENSOR_FITS:
        _fail(f"{path}.sensor_fit", f"{block.sensor_fit!r} is not one of "
                                    f"{camera_model.SENSOR_FITS}")
    return block


def _shot(index: int, data: Any, previous: ShotData | None) -> ShotData:
    path = f"shots[{index}]"
    if not isinstance(data, dict):
        _fail(path, f"expected an object, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        _fail(f"{path}.name", f"expected a non-empty string, got {name!r}")
    path = f"shots[{index}] {name!r}"
    for key in ("frame_start", "frame_end", "c2w", "K"):
        if key not in data:
            _fail(f"{path}.{key}", "missing")
    start = _integer(f"{path}.frame_start", data["frame_start"])
    end = _integer(f"{path}.frame_end", data["frame_end"])
    if end < start:
        _fail(path, f"empty shot: frame_end {end} < frame_start {start}")
    if start < FRAME_RANGE[0] or end > FRAME_RANGE[1]:
        _fail(path, f"frames {start}..{end} are outside Blender's scene range "
                    f"{FRAME_RANGE[0]}..{FRAME_RANGE[1]}")
    if previous is not None and start <= previous.frame_end:
        _fail(f"{path}.frame_start", f"{start} overlaps the previous shot {previous.name!r} "
                                     f"(frames {previous.frame_start}..{previous.frame_end})")
    n = end - start + 1
    what = f"one row per frame {start}..{end}"
    c2w = _array(f"{path}.c2w", data["c2w"], (n, 4, 4), what)
    if np.abs(c2w[:, 3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-9:
        _fail(f"{path}.c2w", "the bottom row of every pose must be [0, 0, 0, 1]")
    rotations = c2w[:, :3, :3]
    error = np.abs(np.swapaxes(rotations, -1, -2) @ rotations - np.eye(3)).max(axis=(-2, -1))
    bad = np.flatnonzero((error > ROTATION_TOLERANCE) | (np.linalg.det(rotations) < 0))
    if len(bad):
        _fail(f"{path}.c2w[{bad[0]}]", "not a rotation (scale, shear or mirror)")
    K = _array(f"{path}.K", data["K"], (n, 4), what)
    bad = np.argwhere(K[:, :2] <= 0)
    if len(bad):
        _fail(f"{path}.K[{bad[0][0]}]", "fx and fy must be positive")
    prompt = data.get("prompt", "")
    if not isinstance(prompt, str):
        _fail(f"{path}.prompt", f"expected a string, got {type(prompt).__name__}")
    lens = data.get("lens")
    return ShotData(path, name, prompt, start, end, c2w, K,
                     None if lens is None else _lens_block(f"{path}.lens", lens, n, what))


def parse_sequence(data: Any) -> tuple[list[ShotData], tuple[int, int], float, str]:
    """Shots, resolution, fps and prompt of ShotSequence JSON data, or ShotDataError."""
    if not isinstance(data, dict):
        _fail("<root>", f"expected a ShotSequence object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        _fail("format", f"{data.get('format')!r} is not a ShotSequence ({FORMAT!r})")
    if isinstance(data.get("version"), bool) or data.get("version") != VERSION:
        _fail("version", f"{data.get('version')!r} is not supported (this add-on reads version "
                         f"{VERSION})")
    fps = _number("fps", data.get("fps"))
    if fps <= 0:
        _fail("fps", f"{fps} must be positive")
    resolution = data.get("resolution")
    if (not isinstance(resolution, list) or len(resolution) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in resolution)):
        _fail("resolution", f"expected two positive integers [W, H], got {resolution!r}")
    prompt = data.get("prompt", "")
    if not isinstance(prompt, str):
        _fail("prompt", f"expected a string, got {type(prompt).__name__}")
    shots_data = data.get("shots")
    if not isinstance(shots_data, list) or not shots_data:
        _fail("shots", "a sequence needs at least one shot")
    shots: list[ShotData] = []
    for i, item in enumerate(shots_data):
        shot = _shot(i, item, shots[-1] if shots else None)
        if any(s.name == shot.name for s in shots):
            _fail(f"{shot.path}.name", "duplicate shot name")
        shots.append(shot)
    return shots, (resolution[0], resolution[1]), fps, prompt
