"""``POST /convert``: the ``convert`` command over HTTP, through :mod:`backend.camera.formats`.

The formats read and write files, so the request's text goes to a private temporary folder under
the name its format expects, and the files written come back as text.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from backend.camera.formats import detect_format, read_sequence, write_sequence
from backend.server.errors import ApiError, sequence_field
from backend.server.schemas import ConvertedFile, ConvertRequest, ConvertResponse

CONTENT_FIELD = "body.input.content"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "shot"


def _input_path(folder: Path, fmt: str, name: str) -> Path:
    """Where ``fmt`` expects its file: the shot name comes from the file name (RealEstate10K,
    nerfstudio) or from the folder that holds ``transforms.json``."""
    if fmt == "realestate10k":
        return folder / f"{name}.txt"
    if fmt == "transforms":
        return folder / name / "transforms.json"
    return folder / f"{name}.json"


def _input_error(error: ValueError, source: Path) -> ApiError:
    """A reader's error, its temporary path replaced by the request field it came from."""
    message = str(error).replace(str(source), CONTENT_FIELD)
    for option in ("width", "height", "fps"):
        if f"--{option}" in message:
            message = message.replace(f"--{option}", option).replace(f"{CONTENT_FIELD}: ", "")
            return ApiError(422, f"body.{option}: {message}", f"body.{option}")
    inner = message.removeprefix(f"{CONTENT_FIELD}: ")
    field = sequence_field(inner) if inner != message else None
    return ApiError(422, message if message.startswith(CONTENT_FIELD)
                    else f"{CONTENT_FIELD}: {message}", field or CONTENT_FIELD)


def convert(body: ConvertRequest) -> ConvertResponse:
    """Convert ``body.input`` to ``body.to``; 422 naming the field for bad input."""
    name = _safe_name(body.input.name)
    with tempfile.TemporaryDirectory(prefix="shotbridge-convert-") as folder:
        source = _input_path(Path(folder) / "in", body.input.format, name)
        source.parent.mkdir(parents=True)
        source.write_text(body.input.content, encoding="utf-8")
        try:
            detected = detect_format(source)
            if detected != body.input.format:
                raise ApiError(422, f"{CONTENT_FIELD}: this is not a {body.input.format} file; "
                                    f"it reads as {detected}", "body.input.format")
            sequence = read_sequence(source, width=body.width, height=body.height, fps=body.fps)
        except ValueError as error:
            raise _input_error(error, source) from None
        out = Path(folder) / "out"
        stem = "sequence" if body.input.format == "shots" else name
        target = out / f"{stem}.json" if body.to == "shots" else out
        try:
            written = write_sequence(sequence, target, body.to)
        except ValueError as error:
            raise ApiError(422, f"body.to: {str(error).replace(folder, '')}", "body.to") from None
        files: dict[Path, list[str]] = {}
        for shot, path in written:
            files.setdefault(path, []).append(shot)
        return ConvertResponse(files=[
            ConvertedFile(shot=shots[0] if len(shots) == 1 else None,
                          name=path.relative_to(out).as_posix(),
                          content=path.read_text(encoding="utf-8"))
            for path, shots in files.items()])
