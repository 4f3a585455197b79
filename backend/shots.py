"""The canonical ShotSequence (version 1): schema, validation and (de)serialisation.

A ShotSequence is what crosses the boundary between the Blender add-on and the backend (see
``shared/DESIGN.md``). Conventions (world frame, OpenCV camera axes, pixel intrinsics) are those of
:mod:`backend.camera.conventions`.

- ``load``/``save`` read and write JSON (arrays inline) or ``.npz`` (for long sequences), chosen by
  the file's extension.
- Every loader validates: NaN/inf, rotations that are not orthonormal (tolerance 1e-4), focal
  lengths that are not positive, arrays whose length differs from the frame range, empty or
  overlapping shots and unknown ``format``/``version`` are rejected with a
  :class:`ShotSequenceError` whose message names the field (and the shot). Nothing is guessed or
  repaired.
- ``SCHEMA_PATH`` is the JSON Schema of the JSON form; the add-on's tests load it as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "shotbridge.shot_sequence"
VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema") / "shot_sequence.v1.schema.json"
ROTATION_TOLERANCE = 1e-4
SENSOR_FITS = ("AUTO", "HORIZONTAL", "VERTICAL")


class ShotSequenceError(ValueError):
    """Invalid ShotSequence content; the message starts with the offending field's path."""


@dataclass
class LensBlock:
    """Blender's own lens description of a shot camera, kept for lossless round trips."""

    lens: np.ndarray
    """(N,) focal length in millimetres per frame."""
    shift_x: np.ndarray
    """(N,) horizontal lens shift per frame, in units of the fitted sensor size."""
    shift_y: np.ndarray
    """(N,) vertical lens shift per frame."""
    sensor_width: float
    """Sensor width in millimetres."""
    sensor_height: float
    """Sensor height in millimetres."""
    sensor_fit: str
    """AUTO, HORIZONTAL or VERTICAL."""


@dataclass
class SubjectTrack:
    """A subject seen through one shot's camera: its 2D projection per frame of the shot."""

    name: str
    """Name of the object in ``ShotSequence.objects``."""
    uv: np.ndarray
    """(N, 2) pixel coordinates (continuous, y down) at the sequence's resolution."""
    visible: np.ndarray
    """(N,) bool: in front of the camera and inside the frame."""


@dataclass
class Shot:
    """One shot: a camera over an inclusive frame range, with a prompt."""

    name: str
    """Unique name of the shot (a timeline marker's name in Blender)."""
    camera: str
    """Name of the camera object that films it."""
    frame_start: int
    """First frame, inclusive, on the source timeline."""
    frame_end: int
    """Last frame, inclusive."""
    c2w: np.ndarray
    """(N, 4, 4) camera-to-world, OpenCV camera axes, metres; N = frame_end - frame_start + 1."""
    K: np.ndarray
    """(N, 4) ``[fx, fy, cx, cy]`` in pixels at the sequence's resolution."""
    prompt: str = ""
    """What happens in this shot."""
    lens: LensBlock | None = None
    """Optional Blender lens block."""
    subjects: list[SubjectTrack] = field(default_factory=list)
    """Optional 2D tracks of subjects through this shot's camera."""

    @property
    def num_frames(self) -> int:
        return self.frame_end - self.frame_start + 1

    @property
    def frames(self) -> np.ndarray:
        """(N,) the shot's frame numbers."""
        return np.arange(self.frame_start, self.frame_end + 1)


@dataclass
class ObjectTrack:
    """A subject's world-space track."""

    name: str
    """Object name in the source scene."""
    frame_start: int
    """First frame, inclusive."""
    frame_end: int
    """Last frame, inclusive."""
    positions: np.ndarray
    """(N, 3) world positions in metres."""
    rotations: np.ndarray | None = None
    """Optional (N, 3, 3) world rotations."""
    bbox_min: np.ndarray | None = None
    """Optional (3,) lower corner of the object's bounding box in its own axes, metres."""
    bbox_max: np.ndarray | None = None
    """Optional (3,) upper corner of that box."""


@dataclass
class ShotSequence:
    """Shots, subjects and prompts of one sequence; see the module docstring for the contract."""

    fps: float
    """Frames per second of the source timeline."""
    resolution: tuple[int, int]
    """Render resolution ``(W, H)`` in pixels, resolution percentage applied."""
    shots: list[Shot]
    """Shots in timeline order, not overlapping."""
    prompt: str = ""
    """The global prompt."""
    objects: list[ObjectTrack] = field(default_factory=list)
    """World tracks of the subjects."""
    scene_points: np.ndarray | None = None
    """Optional (M, 3) world points on the static scene's surfaces (camera-motion tracks)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (source application, file, scene); never read by the models."""

    @property
    def frame_start(self) -> int:
        return min(shot.frame_start for shot in self.shots)

    @property
    def frame_end(self) -> int:
        return max(shot.frame_end for shot in self.shots)

    def shot(self, name: str) -> Shot:
        """The shot called ``name``; KeyError naming the available shots otherwise."""
        for shot in self.shots:
            if shot.name == name:
                return shot
        raise KeyError(f"no shot named {name!r}; shots: {[s.name for s in self.shots]}")

    def validate(self) -> ShotSequence:
        """Check every invariant of the contract; raise ShotSequenceError naming the field."""
        _validate(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (plain lists and numbers)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ShotSequence:
        """Parse and validate the JSON form."""
        return _validate(_Parser().sequence(data))


# --------------------------------------------------------------------------------------------
# Validation


def _fail(path: str, message: str) -> None:
    raise ShotSequenceError(f"{path}: {message}")


def _check_finite(path: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        index = "".join(f"[{i}]" for i in bad)
        _fail(f"{path}{index}", f"value {array[tuple(bad)]} is not finite")


def _check_shape(path: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        _fail(path, f"expected shape {shape}, got {array.shape}")


def _check_rotations(path: str, rotations: np.ndarray) -> None:
    """rotations: (N, 3, 3); each must be orthonormal with determinant +1."""
    gram = np.swapaxes(rotations, -1, -2) @ rotations
    error = np.abs(gram - np.eye(3)).max(axis=(-2, -1))
    det = np.linalg.det(rotations)
    for i in range(len(rotations)):
        if error[i] > ROTATION_TOLERANCE:
            _fail(f"{path}[{i}]", f"rotation is not orthonormal (max |RᵀR - I| = {error[i]:.3g} "
                                  f"> {ROTATION_TOLERANCE}); scale or shear is not allowed")
        if det[i] < 0:
            _fail(f"{path}[{i}]", "rotation has determinant -1 (a mirror), not a rotation")


def _validate_shot(path: str, shot: Shot) -> None:
    if not shot.name:
        _fail(f"{path}.name", "must be a non-empty string")
    if shot.frame_end < shot.frame_start:
        _fail(path, f"empty shot: frame_end {shot.frame_end} < frame_start {shot.frame_start}")
    n = shot.num_frames
    _check_shape(f"{path}.c2w", shot.c2w, (n, 4, 4))
    _check_finite(f"{path}.c2w", shot.c2w)
    if np.abs(shot.c2w[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max() > 1e-9:
        _fail(f"{path}.c2w", "bottom row of every pose must be [0, 0, 0, 1]")
    _check_rotations(f"{path}.c2w", shot.c2w[:, :3, :3])
    _check_shape(f"{path}.K", shot.K, (n, 4))
    _check_finite(f"{path}.K", shot.K)
    bad = np.argwhere(shot.K[:, :2] <= 0)
    if len(bad):
        frame, column = bad[0]
        _fail(f"{path}.K[{frame}]", f"{'fx' if column == 0 else 'fy'} = {shot.K[frame, column]} "
                                    "must be positive")
    if shot.lens is not None:
        lens = shot.lens
        for name in ("lens", "shift_x", "shift_y"):
            _check_shape(f"{path}.lens.{name}", getattr(lens, name), (n,))
            _check_finite(f"{path}.lens.{name}", getattr(lens, name))
        for name in ("lens", "sensor_width", "sensor_height"):
            if np.any(np.asarray(getattr(lens, name)) <= 0):
                _fail(f"{path}.lens.{name}", "must be positive")
        if lens.sensor_fit not in SENSOR_FITS:
            _fail(f"{path}.lens.sensor_fit", f"{lens.sensor_fit!r} is not one of {SENSOR_FITS}")
    names = set()
    for j, subject in enumerate(shot.subjects):
        sub = f"{path}.subjects[{j}]"
        if subject.name in names:
            _fail(f"{sub}.name", f"duplicate subject {subject.name!r}")
        names.add(subject.name)
        _check_shape(f"{sub}.uv", subject.uv, (n, 2))
        _check_finite(f"{sub}.uv", subject.uv)
        _check_shape(f"{sub}.visible", subject.visible, (n,))


def _validate_object(path: str, obj: ObjectTrack) -> None:
    if not obj.name:
        _fail(f"{path}.name", "must be a non-empty string")
    if obj.frame_end < obj.frame_start:
        _fail(path, f"empty track: frame_end {obj.frame_end} < frame_start {obj.frame_start}")
    n = obj.frame_end - obj.frame_start + 1
    _check_shape(f"{path}.positions", obj.positions, (n, 3))
    _check_finite(f"{path}.positions", obj.positions)
    if obj.rotations is not None:
        _check_shape(f"{path}.rotations", obj.rotations, (n, 3, 3))
        _check_finite(f"{path}.rotations", obj.rotations)
        _check_rotations(f"{path}.rotations", obj.rotations)
    if (obj.bbox_min is None) != (obj.bbox_max is None):
        _fail(f"{path}.bbox_min", "bbox_min and bbox_max come together")
    if obj.bbox_min is not None:
        _check_shape(f"{path}.bbox_min", obj.bbox_min, (3,))
        _check_shape(f"{path}.bbox_max", obj.bbox_max, (3,))
        _check_finite(f"{path}.bbox_min", obj.bbox_min)
        _check_finite(f"{path}.bbox_max", obj.bbox_max)
        if np.any(obj.bbox_max < obj.bbox_min):
            _fail(f"{path}.bbox_max", "must not be below bbox_min on any axis")


def _validate(seq: ShotSequence) -> ShotSequence:
    if not (np.isfinite(seq.fps) and seq.fps > 0):
        _fail("fps", f"{seq.fps} must be a positive finite number")
    width, height = seq.resolution
    if width <= 0 or height <= 0:
        _fail("resolution", f"{list(seq.resolution)} must be two positive integers [W, H]")
    if not seq.shots:
        _fail("shots", "a sequence needs at least one shot")
    names: set[str] = set()
    for i, shot in enumerate(seq.shots):
        path = f"shots[{i}] {shot.name!r}"
        if shot.name in names:
            _fail(f"{path}.name", "duplicate shot name")
        names.add(shot.name)
        _validate_shot(path, shot)
        if i and shot.frame_start <= seq.shots[i - 1].frame_end:
            previous = seq.shots[i - 1]
            _fail(f"{path}.frame_start", f"{shot.frame_start} overlaps shots[{i - 1}] "
                                         f"{previous.name!r} (frames {previous.frame_start}.."
                                         f"{previous.frame_end}); shots must be in timeline order "
                                         "without overlap")
    object_names: set[str] = set()
    for i, obj in enumerate(seq.objects):
        path = f"objects[{i}] {obj.name!r}"
        if obj.name in object_names:
            _fail(f"{path}.name", "duplicate object name")
        object_names.add(obj.name)
        _validate_object(path, obj)
    if seq.scene_points is not None:
        if seq.scene_points.ndim != 2 or seq.scene_points.shape[1:] != (3,):
            _fail("scene_points", f"expected shape (M, 3), got {seq.scene_points.shape}")
        _check_finite("scene_points", seq.scene_points)
    for i, shot in enumerate(seq.shots):
        for j, subject in enumerate(shot.subjects):
            if subject.name not in object_names:
                _fail(f"shots[{i}] {shot.name!r}.subjects[{j}].name",
                      f"{subject.name!r} is not among objects {sorted(object_names)}")
    return seq


# --------------------------------------------------------------------------------------------
# Parsing the JSON form (also used for the npz form's metadata)


def _item_path(field: str, index: int, item: Any) -> str:
    """``shots[1] 'shot_020'``, as validation names it; the bare index when there is no name."""
    name = item.get("name") if isinstance(item, dict) else None
    return f"{field}[{index}] {name!r}" if isinstance(name, str) else f"{field}[{index}]"


class _Parser:
    """Turns untrusted dicts into dataclasses, naming the field of any type error."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        # In the npz form large arrays live beside the JSON metadata, keyed by field path.
        self.arrays = arrays

    def _keys(self, path: str, data: Any, required: set[str], optional: set[str]) -> dict:
        if not isinstance(data, dict):
            _fail(path or "<root>", f"expected an object, got {type(data).__name__}")
        # Unknown fields first: a misspelt key ("C2W") is then named as such, not as a missing one.
        unknown = set(data) - required - optional
        if unknown:
            _fail(f"{path}.{sorted(unknown)[0]}".lstrip("."),
                  f"unknown field (known: {sorted(required | optional)})")
        for key in sorted(required):
            if key not in data:
                _fail(f"{path}.{key}".lstrip("."), "missing")
        return data

    @staticmethod
    def _str(path: str, value: Any) -> str:
        if not isinstance(value, str):
            _fail(path, f"expected a string, got {type(value).__name__}")
        return value

    @staticmethod
    def _int(path: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            _fail(path, f"expected an integer, got {value!r}")
        return int(value)

    @staticmethod
    def _float(path: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            _fail(path, f"expected a number, got {value!r}")
        return float(value)

    def _array(self, path: str, value: Any, dtype: type | None = np.float64) -> np.ndarray:
        if self.arrays is not None and isinstance(value, str) and value.startswith("@"):
            key = value[1:]
            if key not in self.arrays:
                _fail(path, f"array {key!r} is missing from the npz file")
            value = self.arrays[key]
        try:
            array = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as error:
            _fail(path, f"not a rectangular array of numbers ({error})")
        return array

    def _booleans(self, path: str, value: Any) -> np.ndarray:
        # Not dtype=bool: that would read 0/1 or 0.5 as booleans, which the schema refuses.
        array = self._array(path, value, dtype=None)
        if array.size and array.dtype != np.bool_:
            _fail(path, f"expected booleans (true/false), got {array.dtype} values")
        return array.astype(bool)

    def lens(self, path: str, data: Any) -> LensBlock:
        keys = {"lens", "shift_x", "shift_y", "sensor_width", "sensor_height", "sensor_fit"}
        data = self._keys(path, data, keys, set())
        return LensBlock(
            lens=self._array(f"{path}.lens", data["lens"]),
            shift_x=self._array(f"{path}.shift_x", data["shift_x"]),
            shift_y=self._array(f"{path}.shift_y", data["shift_y"]),
            sensor_width=self._float(f"{path}.sensor_width", data["sensor_width"]),
            sensor_height=self._float(f"{path}.sensor_height", data["sensor_height"]),
            sensor_fit=self._str(f"{path}.sensor_fit", data["sensor_fit"]),
        )

    def subject(self, path: str, data: Any) -> SubjectTrack:
        data = self._keys(path, data, {"name", "uv", "visible"}, set())
        return SubjectTrack(
            name=self._str(f"{path}.name", data["name"]),
            uv=self._array(f"{path}.uv", data["uv"]),
            visible=self._booleans(f"{path}.visible", data["visible"]),
        )

    def shot(self, path: str, data: Any) -> Shot:
        required = {"name", "camera", "frame_start", "frame_end", "c2w", "K"}
        data = self._keys(path, data, required, {"prompt", "lens", "subjects"})
        return Shot(
            name=self._str(f"{path}.name", data["name"]),
            camera=self._str(f"{path}.camera", data["camera"]),
            frame_start=self._int(f"{path}.frame_start", data["frame_start"]),
            frame_end=self._int(f"{path}.frame_end", data["frame_end"]),
            c2w=self._array(f"{path}.c2w", data["c2w"]),
            K=self._array(f"{path}.K", data["K"]),
            prompt=self._str(f"{path}.prompt", data.get("prompt", "")),
            lens=self.lens(f"{path}.lens", data["lens"]) if data.get("lens") is not None else None,
            subjects=[self.subject(f"{path}.subjects[{j}]", s) for j, s in
                      enumerate(self._list(f"{path}.subjects", data.get("subjects", [])))],
        )

    def object(self, path: str, data: Any) -> ObjectTrack:
        optional = {"rotations", "bbox_min", "bbox_max"}
        data = self._keys(path, data, {"name", "frame_start", "frame_end", "positions"}, optional)

        def maybe(key: str) -> np.ndarray | None:
            return None if data.get(key) is None else self._array(f"{path}.{key}", data[key])

        return ObjectTrack(
            name=self._str(f"{path}.name", data["name"]),
            frame_start=self._int(f"{path}.frame_start", data["frame_start"]),
            frame_end=self._int(f"{path}.frame_end", data["frame_end"]),
            positions=self._array(f"{path}.positions", data["positions"]),
            rotations=maybe("rotations"),
            bbox_min=maybe("bbox_min"),
            bbox_max=maybe("bbox_max"),
        )

    @staticmethod
    def _list(path: str, value: Any) -> list:
        if not isinstance(value, list):
            _fail(path, f"expected a list, got {type(value).__name__}")
        return value

    def sequence(self, data: Any) -> ShotSequence:
        required = {"format", "version", "fps", "resolution", "shots"}
        data = self._keys("", data, required, {"prompt", "objects", "scene_points", "metadata"})
        if data["format"] != FORMAT:
            _fail("format", f"{data['format']!r} is not a ShotSequence (expected {FORMAT!r})")
        if isinstance(data["version"], bool) or data["version"] != VERSION:
            _fail("version", f"{data['version']!r} is not supported (this build reads {VERSION})")
        resolution = self._list("resolution", data["resolution"])
        if len(resolution) != 2:
            _fail("resolution", f"expected [W, H], got {resolution!r}")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            _fail("metadata", "expected an object")
        shots = self._list("shots", data["shots"])
        objects = self._list("objects", data.get("objects", []))
        return ShotSequence(
            fps=self._float("fps", data["fps"]),
            resolution=(self._int("resolution[0]", resolution[0]),
                        self._int("resolution[1]", resolution[1])),
            shots=[self.shot(_item_path("shots", i, s), s) for i, s in enumerate(shots)],
            prompt=self._str("prompt", data.get("prompt", "")),
            objects=[self.object(_item_path("objects", i, o), o) for i, o in enumerate(objects)],
            scene_points=(None if data.get("scene_points") is None
                          else self._array("scene_points", data["scene_points"])),
            metadata=metadata,
        )


# --------------------------------------------------------------------------------------------
# Serialisation


def _lens_dict(lens: LensBlock) -> dict[str, Any]:
    return {
        "lens": lens.lens.tolist(), "shift_x": lens.shift_x.tolist(),
        "shift_y": lens.shift_y.tolist(),
        "sensor_width": float(lens.sensor_width), "sensor_height": float(lens.sensor_height),
        "sensor_fit": lens.sensor_fit,
    }


def _to_dict(seq: ShotSequence, put: Any = None) -> dict[str, Any]:
    """The JSON form; ``put(array, key)`` decides how an array is stored (inline by default)."""

    def inline(array: np.ndarray, key: str = "") -> Any:
        return np.asarray(array).tolist()

    put = put or inline
    shots = []
    for i, shot in enumerate(seq.shots):
        entry: dict[str, Any] = {
            "name": shot.name, "camera": shot.camera, "prompt": shot.prompt,
            "frame_start": shot.frame_start, "frame_end": shot.frame_end,
            "c2w": put(shot.c2w, f"shots/{i}/c2w"), "K": put(shot.K, f"shots/{i}/K"),
        }
        if shot.lens is not None:
            entry["lens"] = _lens_dict(shot.lens)
        if shot.subjects:
            entry["subjects"] = [
                {"name": s.name, "uv": put(s.uv, f"shots/{i}/subjects/{j}/uv"),
                 "visible": put(s.visible.astype(bool), f"shots/{i}/subjects/{j}/visible")}
                for j, s in enumerate(shot.subjects)
            ]
        shots.append(entry)
    objects = []
    for i, obj in enumerate(seq.objects):
        entry = {"name": obj.name, "frame_start": obj.frame_start, "frame_end": obj.frame_end,
                 "positions": put(obj.positions, f"objects/{i}/positions")}
        if obj.rotations is not None:
            entry["rotations"] = put(obj.rotations, f"objects/{i}/rotations")
        if obj.bbox_min is not None:
            entry["bbox_min"] = obj.bbox_min.tolist()
            entry["bbox_max"] = obj.bbox_max.tolist()
        objects.append(entry)
    data = {
        "format": FORMAT, "version": VERSION, "fps": float(seq.fps),
        "resolution": [int(seq.resolution[0]), int(seq.resolution[1])],
        "prompt": seq.prompt, "shots": shots, "objects": objects,
    }
    if seq.scene_points is not None:
        data["scene_points"] = put(seq.scene_points, "scene_points")
    data["metadata"] = seq.metadata
    return data


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _dumps(value: Any, indent: str = "") -> str:
    """JSON with one line per row or pose: a small matrix (up to 4 rows) stays on one line."""
    if isinstance(value, list) and (all(map(_is_scalar, value)) or (len(value) <= 4 and all(
            isinstance(v, list) and all(map(_is_scalar, v)) for v in value))):
        return json.dumps(value)
    inner = indent + " "
    if isinstance(value, list):
        items = ",\n".join(inner + _dumps(v, inner) for v in value)
        return f"[\n{items}\n{indent}]" if value else "[]"
    if isinstance(value, dict):
        items = ",\n".join(f"{inner}{json.dumps(k)}: {_dumps(v, inner)}" for k, v in value.items())
        return f"{{\n{items}\n{indent}}}" if value else "{}"
    return json.dumps(value)


def save(seq: ShotSequence, path: str | Path) -> Path:
    """Validate and write ``seq`` as JSON, or as ``.npz`` when the path ends so."""
    path = Path(path)
    seq.validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        arrays: dict[str, np.ndarray] = {}

        def put(array: np.ndarray, key: str) -> str:
            arrays[key] = np.asarray(array)
            return "@" + key

        meta = json.dumps(_to_dict(seq, put))
        np.savez_compressed(path, __meta__=np.array(meta), **arrays)
    else:
        path.write_text(_dumps(seq.to_dict()) + "\n")
    return path


def load(path: str | Path) -> ShotSequence:
    """Read and validate a ShotSequence from JSON or ``.npz``; errors name the file and field."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
            if "__meta__" not in arrays:
                raise ShotSequenceError("__meta__: missing; not a ShotSequence .npz file")
            data = json.loads(str(arrays.pop("__meta__")))
            return _validate(_Parser(arrays).sequence(data))
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ShotSequenceError(f"not valid JSON: {error}") from None
        return ShotSequence.from_dict(data)
    except ShotSequenceError as error:
        raise ShotSequenceError(f"{path}: {error}") from None
