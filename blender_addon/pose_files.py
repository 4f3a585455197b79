"""Writing per-shot pose files from ShotSequence data, without bpy (the add-on's own small writer).

RealEstate10K / CameraCtrl ``.txt``: line 1 the source (blank here), then per frame
``timestamp_us fx/W fy/H cx/W cy/H 0 0`` and the 3x4 world-to-camera matrix, row-major, OpenCV
axes. The backend has the full reader/writer (``backend/camera/formats/realestate10k.py``); the
tests check that both agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np


def _file_name(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "shot") + ".txt"


def realestate10k_lines(shot: dict[str, Any], resolution: tuple[int, int], fps: float) -> list[str]:
    """The lines of one shot's pose file (without trailing newlines)."""
    width, height = resolution
    c2w = np.asarray(shot["c2w"], dtype=np.float64)
    K = np.asarray(shot["K"], dtype=np.float64) / np.array([width, height, width, height])
    w2c = np.linalg.inv(c2w)[:, :3]
    lines = [""]
    for i in range(len(c2w)):
        timestamp = round(i * 1e6 / fps)
        values = [*K[i], 0.0, 0.0, *w2c[i].ravel()]
        lines.append(" ".join([str(timestamp)] + [repr(float(v)) for v in values]))
    return lines


def write_realestate10k(sequence: dict[str, Any], output: Path) -> list[Path]:
    """One pose file per shot into the folder ``output`` (or the file, for a single shot)."""
    shots = sequence["shots"]
    resolution = tuple(sequence["resolution"])
    if output.suffix == ".txt":
        if len(shots) != 1:
            raise ValueError(f"{output} names one file but there are {len(shots)} shots; "
                             "choose a folder")
        paths = [output]
    else:
        paths = [output / _file_name(shot["name"]) for shot in shots]
    for shot, path in zip(shots, paths, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(realestate10k_lines(shot, resolution, sequence["fps"])) + "\n")
    return paths
