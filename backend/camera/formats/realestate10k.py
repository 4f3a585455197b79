"""RealEstate10K / CameraCtrl pose files (``.txt``), read and write.

Line 1 is the source video's URL (RealEstate10K, CameraCtrl) or blank (VideoX-Fun presets). Every
further line is one frame::

    timestamp fx fy cx cy 0 0 w2c[0,0] w2c[0,1] ... w2c[2,3]

``timestamp`` is in microseconds, ``fx, cx`` are divided by the image width and ``fy, cy`` by its
height, and the 3x4 world-to-camera matrix is row-major with OpenCV camera axes, the canonical
axes, so no flip is needed. The file holds neither the resolution nor the frame rate: converting to
a ShotSequence needs both from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.shots import Shot

VALUES_PER_LINE = 19


class RealEstate10KError(ValueError):
    """A malformed pose file; the message names the file and line."""


@dataclass
class RealEstate10KFile:
    """The content of one pose file, exactly as written."""

    url: str
    """First line: the source URL, or '' when blank."""
    timestamps: np.ndarray
    """(N,) int64 microseconds."""
    intrinsics: np.ndarray
    """(N, 4) ``[fx/W, fy/H, cx/W, cy/H]``."""
    distortion: np.ndarray
    """(N, 2) the two placeholder columns (zeros in every published file)."""
    w2c: np.ndarray
    """(N, 3, 4) world-to-camera, OpenCV axes."""


def read(path: str | Path) -> RealEstate10KFile:
    """Parse a pose file; errors name the file and the line."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if not lines:
        raise RealEstate10KError(f"{path}: empty file")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != VALUES_PER_LINE:
            raise RealEstate10KError(f"{path}:{number}: expected {VALUES_PER_LINE} values "
                                     f"(timestamp fx fy cx cy 0 0 + 3x4 w2c), got {len(fields)}")
        try:
            rows.append([int(fields[0])] + [float(value) for value in fields[1:]])
        except ValueError as error:
            raise RealEstate10KError(f"{path}:{number}: {error}") from None
    if not rows:
        raise RealEstate10KError(f"{path}: no frame lines after the first (URL) line")
    values = np.array([row[1:] for row in rows], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise RealEstate10KError(f"{path}: values must be finite")
    return RealEstate10KFile(
        url=lines[0].strip(),
        timestamps=np.array([row[0] for row in rows], dtype=np.int64),
        intrinsics=values[:, 0:4],
        distortion=values[:, 4:6],
        w2c=values[:, 6:18].reshape(-1, 3, 4),
    )


def write(data: RealEstate10KFile, path: str | Path) -> Path:
    """Write a pose file; floats with full precision so that reading it back is exact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [data.url]
    for i in range(len(data.timestamps)):
        values = np.concatenate([data.intrinsics[i], data.distortion[i], data.w2c[i].ravel()])
        lines.append(" ".join([str(int(data.timestamps[i]))] + [repr(float(v)) for v in values]))
    path.write_text("\n".join(lines) + "\n")
    return path


def to_shot(data: RealEstate10KFile, width: int, height: int, *, name: str, frame_start: int = 0,
            camera: str = "") -> Shot:
    """A Shot (unvalidated) from a pose file, with K in pixels at ``width`` x ``height``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width} x {height}")
    w2c = np.zeros((len(data.w2c), 4, 4))
    w2c[:, :3] = data.w2c
    w2c[:, 3, 3] = 1.0
    # The general inverse, not the rigid one: file rotations carry ~1e-9 rounding, and this keeps
    # file -> Shot -> file exact to that level.
    c2w = np.linalg.inv(w2c)
    c2w[:, 3] = (0.0, 0.0, 0.0, 1.0)
    K = data.intrinsics * np.array([width, height, width, height], dtype=np.float64)
    return Shot(name=name, camera=camera or name, frame_start=frame_start,
                frame_end=frame_start + len(c2w) - 1, c2w=c2w, K=K)


def from_shot(shot: Shot, width: int, height: int, fps: float, *, url: str = "",
              timestamps: np.ndarray | None = None) -> RealEstate10KFile:
    """A pose file from a Shot; timestamps default to the shot's frames at ``fps`` from zero."""
    n = shot.num_frames
    if timestamps is None:
        timestamps = np.round(np.arange(n) * 1e6 / fps).astype(np.int64)
    w2c = np.linalg.inv(shot.c2w)[:, :3]
    scale = np.array([width, height, width, height], dtype=np.float64)
    return RealEstate10KFile(url=url, timestamps=np.asarray(timestamps, dtype=np.int64),
                             intrinsics=shot.K / scale, distortion=np.zeros((n, 2)), w2c=w2c)
