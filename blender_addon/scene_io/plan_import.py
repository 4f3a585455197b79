"""Planned shots into the scene: ShotSequence data -> editable keyframed cameras and markers.

The other direction of :mod:`.export`. Each shot becomes one camera in the "ShotBridge Plan"
collection, with Bezier keys on location and rotation (a few keys within a tolerance, see
:mod:`..keyframes`), lens and shift keys only where the intrinsics change, and a timeline marker
bound to it at the shot's first frame, so that exporting the scene again gives the same shots.

Safety rules, in order:
- Everything is validated and computed before the scene changes; a :class:`SceneError` naming the
  field leaves the scene as it was. The operator wraps the call in one undo step.
- Plan cameras, their camera data and their actions carry a ``"shotbridge_plan"`` custom property
  with the object's name and a digest of its keys as imported. Importing again removes only those
  cameras (a renamed or duplicated camera is the user's) and only markers bound to them; the
  user's own cameras and markers are never touched.
- A plan camera whose keys or lens changed since import is "edited": it is only replaced with
  ``replace_edited=True`` (the operator asks first).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from bpy_extras import anim_utils

from .. import camera_model, keyframes
from .export import FORMAT, VERSION, SceneError

PLAN_COLLECTION = "ShotBridge Plan"
PLAN_PROPERTY = "shotbridge_plan"
ROTATION_MODES = ("XYZ", "QUATERNION")

# Lens keys keep fx within this fraction (float32 lens values resolve ~6e-8 of the value).
LENS_RELATIVE_TOLERANCE = 3e-7
# A focal length that varies less than this (mm) over a shot is constant: no lens keys.
CONSTANT_LENS_MM = 1e-6
# Shift keys keep the principal point within this many units of the fitted view size.
SHIFT_TOLERANCE = 1e-7
CONSTANT_SHIFT = 1e-9
# A lens block is used when it reproduces K this closely (relative to the largest entry).
LENS_BLOCK_MATCH = 1e-6
ROTATION_TOLERANCE = 1e-4  # max |RᵀR - I| of a pose, as backend/shots.py
# Blender's hard limits: lens and sensor sizes (mm), scene frame range.
_MIN_LENS_MM = 1.0
_FRAME_RANGE = (0, 1048574)

_CAMERA_PROPERTIES = ("type", "lens", "sensor_width", "sensor_height", "sensor_fit", "shift_x",
                      "shift_y")


@dataclass
class ImportReport:
    """What :func:`import_sequence` did, for the operator's one-line report."""

    cameras: list[str] = field(default_factory=list)
    """Names of the plan cameras created, in shot order."""
    markers: list[str] = field(default_factory=list)
    """Names of the timeline markers created (one per shot)."""
    keys_kept: dict[str, int] = field(default_factory=dict)
    """Per shot: frames that hold a key on any of its camera's F-curves."""
    fcurve_keys: dict[str, int] = field(default_factory=dict)
    """Per shot: keyframe points over all F-curves (location, rotation, lens, shift)."""
    samples: int = 0
    """Frames imported over all shots (the per-frame samples the keys replace)."""
    replaced: list[str] = field(default_factory=list)
    """Names of the previous plan cameras that were removed."""
    resolution_changed: bool = False
    """The render size or pixel aspect was changed to the sequence's."""
    fps_changed: bool = False
    """The scene frame rate was changed to the sequence's."""
    frame_range_changed: bool = False
    """The scene frame range was changed to span the shots."""
    position_tolerance: float = 0.001
    """Position tolerance of the key reduction, metres."""
    angle_tolerance_deg: float = 0.05
    """Rotation tolerance of the key reduction, degrees."""
    resolution: tuple[int, int] = (0, 0)
    """The sequence's render size ``(W, H)``."""
    frame_range: tuple[int, int] = (0, 0)
    """First and last frame of the shots."""
    fps: float = 0.0
    """The sequence's frame rate."""

    @property
    def total_keys(self) -> int:
        """Keyed frames over all shots."""
        return sum(self.keys_kept.values())

    def summary(self) -> str:
        """One line: 'Imported 3 shots: 3 cameras, 41 keys kept from 360 frames (...)'."""
        line = (f"Imported {_count(len(self.keys_kept), 'shot')}: "
                f"{_count(len(self.cameras), 'camera')}, {_count(self.total_keys, 'key')} kept "
                f"from {_count(self.samples, 'frame')} (tolerance "
                f"{self.position_tolerance * 1000:g} mm, {self.angle_tolerance_deg:g}°)")
        if self.replaced:
            line += f"; replaced {_count(len(self.replaced), 'previous plan camera')}"
        if self.resolution_changed:
            line += f"; render size set to {self.resolution[0]}×{self.resolution[1]}"
        if self.fps_changed:
            line += f"; frame rate set to {self.fps:g} fps"
        if self.frame_range_changed:
            line += f"; frame range set to {self.frame_range[0]}–{self.frame_range[1]}"
        return line


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --------------------------------------------------------------------------------------------
# Validation: untrusted dict -> arrays, or SceneError naming the field


@dataclass
class _LensBlock:
    lens: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    sensor_width: float
    sensor_height: float
    sensor_fit: str


@dataclass
class _ShotData:
    path: str
    name: str
    prompt: str
    frame_start: int
    frame_end: int
    c2w: np.ndarray
    K: np.ndarray
    lens: _LensBlock | None


def _fail(path: str, message: str) -> None:
    raise SceneError(f"{path}: {message}")


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


def _lens_block(path: str, data: Any, n: int, what: str) -> _LensBlock:
    if not isinstance(data, dict):
        _fail(path, f"expected an object, got {type(data).__name__}")
    for key in ("lens", "shift_x", "shift_y", "sensor_width", "sensor_height", "sensor_fit"):
        if key not in data:
            _fail(f"{path}.{key}", "missing")
    block = _LensBlock(
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


def _shot(index: int, data: Any, previous: _ShotData | None) -> _ShotData:
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
    if start < _FRAME_RANGE[0] or end > _FRAME_RANGE[1]:
        _fail(path, f"frames {start}..{end} are outside Blender's scene range "
                    f"{_FRAME_RANGE[0]}..{_FRAME_RANGE[1]}")
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
    return _ShotData(path, name, prompt, start, end, c2w, K,
                     None if lens is None else _lens_block(f"{path}.lens", lens, n, what))


def _parse(data: Any) -> tuple[list[_ShotData], tuple[int, int], float, str]:
    """Shots, resolution, fps and prompt of ShotSequence JSON data; SceneError naming the field."""
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
    shots: list[_ShotData] = []
    for i, item in enumerate(shots_data):
        shot = _shot(i, item, shots[-1] if shots else None)
        if any(s.name == shot.name for s in shots):
            _fail(f"{shot.path}.name", "duplicate shot name")
        shots.append(shot)
    return shots, (resolution[0], resolution[1]), fps, prompt


# --------------------------------------------------------------------------------------------
# Planning: arrays -> Blender settings and keys (no bpy writes)


@dataclass
class _PlannedCamera:
    shot: _ShotData
    camera: camera_model.BlenderCamera
    """Static settings (first frame) and the render settings all shots share."""
    rotation_mode: str
    location: list[keyframes.ChannelKeys]
    rotation: list[keyframes.ChannelKeys]
    lens: keyframes.ChannelKeys
    shift: list[keyframes.ChannelKeys]


def _lens_settings(shot: _ShotData, width: int, height: int) -> list[camera_model.BlenderCamera]:
    """Per-frame Blender camera settings reproducing the shot's K (its lens block when exact)."""
    sensor = shot.lens.sensor_width if shot.lens is not None else 36.0
    try:
        fitted = [camera_model.blender_from_intrinsics(k, width, height, sensor_width=sensor)
                  for k in shot.K]
    except ValueError as error:
        raise SceneError(f"{shot.path}.K: Blender cannot hold these intrinsics: {error}") from None
    block = shot.lens
    if block is None:
        return fitted
    try:
        cameras = [camera_model.BlenderCamera(
            lens=float(block.lens[i]), sensor_width=block.sensor_width,
            sensor_height=block.sensor_height, sensor_fit=block.sensor_fit,
            shift_x=float(block.shift_x[i]), shift_y=float(block.shift_y[i]),
            resolution_x=width, resolution_y=height, resolution_percentage=100,
            pixel_aspect_x=fitted[i].pixel_aspect_x, pixel_aspect_y=fitted[i].pixel_aspect_y,
        ) for i in range(len(shot.K))]
    except ValueError:
        return fitted
    if min(block.lens.min(), block.sensor_width, block.sensor_height) < _MIN_LENS_MM:
        return fitted  # Blender would clamp these values
    K = np.stack([camera_model.intrinsics_from_blender(cam) for cam in cameras])
    scale = np.abs(shot.K).max(axis=-1, keepdims=True)
    return cameras if np.all(np.abs(K - shot.K) <= LENS_BLOCK_MATCH * scale) else fitted


def _check_pixel_aspect(shots: list[_ShotData]) -> None:
    """Blender has one pixel aspect per scene: fx / fy must be the same in every frame."""
    reference = shots[0].K[0, 0] / shots[0].K[0, 1]
    for shot in shots:
        ratio = shot.K[:, 0] / shot.K[:, 1]
        bad = np.flatnonzero(np.abs(ratio - reference) > 1e-9 * reference)
        if len(bad):
            _fail(f"{shot.path}.K[{bad[0]}]", f"fx / fy = {ratio[bad[0]]:.9g} differs from "
                                              f"{reference:.9g} in the first frame; Blender has "
                                              "one pixel aspect per scene")


def _plan_camera(shot: _ShotData, resolution: tuple[int, int], unit: float, rotation_mode: str,
                 position_tolerance: float, angle_tolerance: float) -> _PlannedCamera:
    frames = np.arange(shot.frame_start, shot.frame_end + 1, dtype=np.float64)
    world = camera_model.matrix_world_from_c2w(shot.c2w)
    rotations = camera_model.nearest_rotation(world[:, :3, :3])
    location = keyframes.reduce_to_bezier(frames, world[:, :3, 3] / unit,
                                          position_tolerance / unit,
                                          error=keyframes.distance_error)
    if rotation_mode == "QUATERNION":
        values, error = (keyframes.quaternions_from_matrices(rotations),
                         keyframes.quaternion_angle_error)
    else:
        values, error = keyframes.eulers_from_matrices(rotations), keyframes.euler_angle_error
    rotation = keyframes.reduce_to_bezier(frames, values, angle_tolerance, error=error)
    cameras = _lens_settings(shot, *resolution)
    lens_mm = np.array([cam.lens for cam in cameras])
    (lens,) = keyframes.reduce_to_bezier(frames, lens_mm,
                                         LENS_RELATIVE_TOLERANCE * float(lens_mm.max()),
                                         constant_tolerance=CONSTANT_LENS_MM)
    shifts = np.array([[cam.shift_x, cam.shift_y] for cam in cameras])
    shift = keyframes.reduce_to_bezier(frames, shifts, SHIFT_TOLERANCE,
                                       constant_tolerance=CONSTANT_SHIFT)
    return _PlannedCamera(shot, cameras[0], rotation_mode, location, rotation, lens, shift)


# --------------------------------------------------------------------------------------------
# Plan cameras in the scene


def _is_plan_camera(obj: bpy.types.Object) -> bool:
    mark = obj.get(PLAN_PROPERTY)
    return (obj.type == "CAMERA" and hasattr(mark, "get")
            and mark.get("object") == obj.name)


def _plan_cameras(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    return sorted((obj for obj in scene.objects if _is_plan_camera(obj)), key=lambda o: o.name)


def _channelbag(owner: bpy.types.ID):
    return anim_utils.animdata_get_channelbag_for_assigned_slot(owner.animation_data)


def _format(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _digest(obj: bpy.types.Object) -> str:
    """Digest of what an animator edits on a plan camera: its keys and its static lens."""
    parts = [f"rotation_mode={obj.rotation_mode}"]
    for label, owner in (("object", obj), ("data", obj.data)):
        channelbag = _channelbag(owner)
        fcurves = sorted(channelbag.fcurves if channelbag else [],
                         key=lambda fc: (fc.data_path, fc.array_index))
        for fc in fcurves:
            points = fc.keyframe_points
            coords = []
            for name in ("co", "handle_left", "handle_right"):
                values = np.zeros(2 * len(points), dtype=np.float32)
                points.foreach_get(name, values)
                coords.append(values)
            kinds = [f"{p.interpolation}/{p.handle_left_type}/{p.handle_right_type}"
                     for p in points]
            parts.append(f"{label}.{fc.data_path}[{fc.array_index}] {fc.extrapolation} "
                         f"mute={fc.mute} " + " ".join(f"{v:.6g}" for v in np.concatenate(coords))
                         + " " + " ".join(kinds))
        if owner is obj.data:
            animated = {fc.data_path for fc in fcurves}
            parts.extend(f"{name}={_format(getattr(owner, name))}" for name in _CAMERA_PROPERTIES
                         if name not in animated)
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _is_edited(obj: bpy.types.Object) -> bool:
    return obj[PLAN_PROPERTY].get("digest") != _digest(obj)


def edited_plan_cameras(scene: bpy.types.Scene) -> list[str]:
    """Names of plan cameras whose keys or lens changed since they were imported."""
    return [obj.name for obj in _plan_cameras(scene) if _is_edited(obj)]


def _remove_plan(scene: bpy.types.Scene, cameras: list[bpy.types.Object]) -> None:
    """Remove plan cameras, the markers bound to them and their marked camera data and actions."""
    names = {obj.name for obj in cameras}
    for marker in list(scene.timeline_markers):
        if marker.camera is not None and marker.camera.name in names:
            scene.timeline_markers.remove(marker)
    for obj in cameras:
        data = obj.data
        actions = {owner.animation_data.action for owner in (obj, data)
                   if owner.animation_data is not None and owner.animation_data.action}
        bpy.data.objects.remove(obj)
        if PLAN_PROPERTY in data and data.users == 0:
            bpy.data.cameras.remove(data)
        for action in actions:
            if PLAN_PROPERTY in action and action.users == 0:
                bpy.data.actions.remove(action)


# --------------------------------------------------------------------------------------------
# Writing


def _plan_collection(scene: bpy.types.Scene) -> bpy.types.Collection:
    """This scene's plan collection, made and linked under the scene collection when missing.

    Another scene's plan collection is not borrowed: linking it would bring its cameras along.
    """
    for collection in scene.collection.children_recursive:
        if collection.name == PLAN_COLLECTION or PLAN_PROPERTY in collection:
            return collection
    collection = bpy.data.collections.new(PLAN_COLLECTION)
    collection[PLAN_PROPERTY] = {"scene": scene.name}
    scene.collection.children.link(collection)
    return collection


def _write_fcurve(channelbag, data_path: str, index: int, keys: keyframes.ChannelKeys,
                  group: str) -> None:
    fcurve = channelbag.fcurves.new(data_path, index=index, group_name=group)
    points = fcurve.keyframe_points
    points.add(len(keys))
    for point in points:
        point.interpolation = "BEZIER"
        point.handle_left_type = "ALIGNED"
        point.handle_right_type = "ALIGNED"
    points.foreach_set("co", keys.co.astype(np.float32).ravel())
    points.foreach_set("handle_left", keys.handle_left.astype(np.float32).ravel())
    points.foreach_set("handle_right", keys.handle_right.astype(np.float32).ravel())
    for name in ("select_control_point", "select_left_handle", "select_right_handle"):
        points.foreach_set(name, np.zeros(len(keys), dtype=bool))
    fcurve.update()


def _animate(owner: bpy.types.ID, action: bpy.types.Action, id_type: str):
    slot = action.slots.new(id_type=id_type, name=owner.name)
    animation = owner.animation_data_create()
    animation.action = action
    animation.action_slot = slot
    return anim_utils.action_ensure_channelbag_for_slot(action, slot)


def _write_camera(planned: _PlannedCamera, collection: bpy.types.Collection) -> bpy.types.Object:
    name = f"Plan {planned.shot.name}"
    cam = planned.camera
    data = bpy.data.cameras.new(name)
    data.type = "PERSP"
    data.sensor_fit = cam.sensor_fit
    data.sensor_width, data.sensor_height = cam.sensor_width, cam.sensor_height
    data.lens = float(planned.lens.values[0])
    data.shift_x, data.shift_y = (float(keys.values[0]) for keys in planned.shift)
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    obj.rotation_mode = planned.rotation_mode
    obj.location = [float(keys.values[0]) for keys in planned.location]
    rotation_path = ("rotation_quaternion" if planned.rotation_mode == "QUATERNION"
                     else "rotation_euler")
    setattr(obj, rotation_path, [float(keys.values[0]) for keys in planned.rotation])

    action = bpy.data.actions.new(f"{obj.name} Action")
    channelbag = _animate(obj, action, "OBJECT")
    for i, keys in enumerate(planned.location):
        _write_fcurve(channelbag, "location", i, keys, "Object Transforms")
    for i, keys in enumerate(planned.rotation):
        _write_fcurve(channelbag, rotation_path, i, keys, "Object Transforms")
    lens_curves = [("lens", 0, planned.lens)] if len(planned.lens) > 1 else []
    lens_curves += [(path, 0, keys) for path, keys in zip(("shift_x", "shift_y"), planned.shift,
                                                          strict=True) if len(keys) > 1]
    if lens_curves:
        data_channelbag = _animate(data, action, "CAMERA")
        for path, index, keys in lens_curves:
            _write_fcurve(data_channelbag, path, index, keys, "Camera")

    mark = {"shot": planned.shot.name, "object": obj.name}
    data[PLAN_PROPERTY] = mark
    action[PLAN_PROPERTY] = mark
    obj[PLAN_PROPERTY] = {**mark, "digest": _digest(obj)}
    return obj


def _apply_render_settings(scene: bpy.types.Scene, camera: camera_model.BlenderCamera,
                           fps: float, frame_range: tuple[int, int],
                           report: ImportReport) -> None:
    render = scene.render
    current = (render.resolution_x * render.resolution_percentage // 100,
               render.resolution_y * render.resolution_percentage // 100)
    aspect = (render.pixel_aspect_x, render.pixel_aspect_y)
    wanted_aspect = (camera.pixel_aspect_x, camera.pixel_aspect_y)
    # Blender stores the aspect as float32: compare at that precision.
    same_aspect = np.allclose(aspect, wanted_aspect, rtol=1e-6, atol=0.0)
    if current != camera_model.render_size(camera) or not same_aspect:
        render.resolution_x, render.resolution_y = camera.resolution_x, camera.resolution_y
        render.resolution_percentage = 100
        render.pixel_aspect_x, render.pixel_aspect_y = wanted_aspect
        report.resolution_changed = True
    if abs(render.fps / render.fps_base - fps) > 1e-6 * fps:
        render.fps = max(1, round(fps))
        render.fps_base = render.fps / fps
        report.fps_changed = True
    if (scene.frame_start, scene.frame_end) != frame_range:
        # In this order Blender never pushes one end past the other.
        scene.frame_start, scene.frame_end = frame_range
        report.frame_range_changed = True


def _set_prompts(scene: bpy.types.Scene, shots: list[_ShotData], prompt: str) -> None:
    settings = getattr(scene, "shotbridge", None)
    if settings is None:
        return
    if prompt:
        settings.global_prompt = prompt
    for shot in shots:
        item = settings.shots.get(shot.name)
        if item is None:
            item = settings.shots.add()
            item.name = shot.name
        if shot.prompt or not item.prompt:
            item.prompt = shot.prompt


def _keyed_frames(obj: bpy.types.Object) -> tuple[int, int]:
    """(distinct keyed frames, keyframe points) over the camera's F-curves."""
    frames: set[float] = set()
    points = 0
    for owner in (obj, obj.data):
        channelbag = _channelbag(owner)
        for fc in channelbag.fcurves if channelbag else []:
            frames.update(point.co[0] for point in fc.keyframe_points)
            points += len(fc.keyframe_points)
    return len(frames), points


def import_sequence(
    scene: bpy.types.Scene,
    data: dict[str, Any],
    *,
    replace_edited: bool = False,
    position_tolerance: float = 0.001,
    angle_tolerance_deg: float = 0.05,
    rotation_mode: str = "XYZ",
) -> ImportReport:
    """Import ShotSequence JSON data as plan cameras with Bezier keys and bound markers.

    Keys stay within ``position_tolerance`` (metres) and ``angle_tolerance_deg`` (the rotation
    angle) of every sampled frame; lens and shift keys reproduce K to ~1e-7. ``rotation_mode`` is
    ``"XYZ"`` (Euler, made compatible frame to frame) or ``"QUATERNION"`` (sign-continuous).
    Previous plan cameras are replaced; edited ones only with ``replace_edited``. Raises
    :class:`SceneError` naming the field (or the edited cameras) before anything changes.
    """
    if rotation_mode not in ROTATION_MODES:
        raise SceneError(f"rotation mode {rotation_mode!r} is not one of {ROTATION_MODES}")
    if not (position_tolerance > 0 and angle_tolerance_deg > 0):
        raise SceneError("tolerances must be positive")
    # 1. Validate and compute everything before the scene changes.
    shots, resolution, fps, prompt = _parse(data)
    _check_pixel_aspect(shots)
    unit = scene.unit_settings.scale_length or 1.0
    planned = [_plan_camera(shot, resolution, unit, rotation_mode, position_tolerance,
                            math.radians(angle_tolerance_deg)) for shot in shots]
    previous = _plan_cameras(scene)
    edited = [obj.name for obj in previous if _is_edited(obj)]
    if edited and not replace_edited:
        raise SceneError(f"plan camera(s) {', '.join(edited)} were edited since they were "
                         "imported; confirm to replace them")

    # 2. Replace the previous plan and match the render settings.
    report = ImportReport(position_tolerance=position_tolerance,
                          angle_tolerance_deg=angle_tolerance_deg, resolution=resolution,
                          frame_range=(shots[0].frame_start, shots[-1].frame_end), fps=fps,
                          replaced=[obj.name for obj in previous])
    _remove_plan(scene, previous)
    _apply_render_settings(scene, planned[0].camera, fps, report.frame_range, report)

    # 3. One camera and one bound marker per shot.
    collection = _plan_collection(scene)
    for plan in planned:
        obj = _write_camera(plan, collection)
        marker = scene.timeline_markers.new(plan.shot.name, frame=plan.shot.frame_start)
        marker.camera = obj
        report.cameras.append(obj.name)
        report.markers.append(marker.name)
        report.keys_kept[plan.shot.name], report.fcurve_keys[plan.shot.name] = _keyed_frames(obj)
        report.samples += len(plan.shot.K)
    if scene.camera is None:
        scene.camera = bpy.data.objects[report.cameras[0]]
    _set_prompts(scene, shots, prompt)
    return report
