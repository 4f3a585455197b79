"""Camera-path file formats <-> ShotSequence.

Each format module reads and writes its own layout; this module detects a file's format from its
content and extension and converts whole sequences. Formats that hold one camera per file
(RealEstate10K, nerfstudio, transforms.json) write one file per shot.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from backend import shots as shots_io
from backend.camera.formats import nerfstudio, realestate10k, transforms
from backend.shots import FORMAT, ShotSequence

FORMATS = ("shots", "npz", "realestate10k", "nerfstudio", "transforms")


class FormatError(ValueError):
    """An input or output no format can take; the message names the file and what is missing."""


def detect_format(path: str | Path) -> str:
    """The format of an existing file, from its extension and, for JSON, its keys."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    if path.suffix == ".npz":
        return "npz"
    if path.suffix == ".txt":
        return "realestate10k"
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise FormatError(f"{path}: not valid JSON: {error}") from None
        if isinstance(data, dict):
            if data.get("format") == FORMAT or "shots" in data:
                return "shots"
            if "camera_path" in data:
                return "nerfstudio"
            if "frames" in data:
                return "transforms"
        raise FormatError(f"{path}: JSON is neither a ShotSequence ('format': {FORMAT!r}), a "
                          "nerfstudio camera path ('camera_path') nor a transforms.json ('frames')")
    raise FormatError(f"{path}: unknown extension {path.suffix!r} (known: .json, .npz, .txt)")


def _need(value: float | int | None, path: Path, what: str, flag: str) -> float | int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise FormatError(f"{path}: the file carries no {what}; give it with {flag}")
    return value


def read_sequence(path: str | Path, *, width: int | None = None, height: int | None = None,
                  fps: float | None = None) -> ShotSequence:
    """Read any known format as a validated ShotSequence.

    ``width``/``height``/``fps`` supply what a format lacks (RealEstate10K has neither resolution
    nor frame rate; transforms.json has no frame rate) and override nothing a file states.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt in ("shots", "npz"):
        return shots_io.load(path)
    name = path.stem if path.name != "transforms.json" else path.parent.name or "shot"
    metadata: dict = {"source": {"format": fmt, "file": path.name}}
    if fmt == "realestate10k":
        data = realestate10k.read(path)
        resolution = (int(_need(width, path, "resolution", "--width")),
                      int(_need(height, path, "resolution", "--height")))
        rate = float(_need(fps, path, "frame rate", "--fps"))
        shot = realestate10k.to_shot(data, *resolution, name=name)
        metadata["realestate10k"] = {name: {"url": data.url,
                                            "timestamps": data.timestamps.tolist()}}
    else:
        reader = nerfstudio.read if fmt == "nerfstudio" else transforms.read
        extra = {} if fmt == "nerfstudio" else {"width": width, "height": height}
        shot, resolution, file_fps = reader(path, name=name, **extra)
        rate = float(_need(file_fps if not math.isnan(file_fps) else fps, path, "frame rate",
                           "--fps"))
    sequence = ShotSequence(fps=rate, resolution=resolution, shots=[shot], metadata=metadata)
    try:
        return sequence.validate()
    except shots_io.ShotSequenceError as error:
        raise shots_io.ShotSequenceError(f"{path}: {error}") from None


_SUFFIX = {"realestate10k": ".txt", "nerfstudio": ".json", "transforms": ".json"}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "shot"


def _shot_paths(sequence: ShotSequence, output: Path, fmt: str) -> list[Path]:
    suffix = _SUFFIX[fmt]
    if output.suffix == suffix:
        if len(sequence.shots) != 1:
            raise FormatError(f"{output}: names one file, but the sequence has "
                              f"{len(sequence.shots)} shots and {fmt} holds one camera per file; "
                              "give a folder instead")
        return [output]
    if fmt == "transforms":
        return [output / _safe(shot.name) / "transforms.json" for shot in sequence.shots]
    return [output / f"{_safe(shot.name)}{suffix}" for shot in sequence.shots]


def write_sequence(sequence: ShotSequence, output: str | Path, fmt: str) -> list[tuple[str, Path]]:
    """Write ``sequence`` as ``fmt``; returns ``(shot name, file)`` for every shot written."""
    output = Path(output)
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    sequence.validate()
    if fmt in ("shots", "npz"):
        if fmt == "npz" and output.suffix != ".npz":
            output = output.with_suffix(".npz")
        path = shots_io.save(sequence, output)
        return [(shot.name, path) for shot in sequence.shots]
    written = []
    for shot, path in zip(sequence.shots, _shot_paths(sequence, output, fmt), strict=True):
        if fmt == "realestate10k":
            source = sequence.metadata.get("realestate10k", {}).get(shot.name, {})
            timestamps = source.get("timestamps")
            if timestamps is not None and len(timestamps) != shot.num_frames:
                timestamps = None
            data = realestate10k.from_shot(shot, *sequence.resolution, sequence.fps,
                                           url=source.get("url", ""), timestamps=timestamps)
            realestate10k.write(data, path)
        elif fmt == "nerfstudio":
            nerfstudio.write(shot, sequence.resolution, sequence.fps, path)
        else:
            transforms.write(shot, sequence.resolution, sequence.fps, path)
        written.append((shot.name, path))
    return written
