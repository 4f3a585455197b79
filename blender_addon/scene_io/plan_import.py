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
from ..shot_data import ShotData, ShotDataError, parse_sequence
from .export import SceneError

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
# Blender's hard limit on lens and sensor sizes (mm).
_MIN_LENS_MM = 1.0

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
# Planning: arrays -> Blender settings and keys (no bpy writes)


@dataclass
class _PlannedCamera:
    shot: ShotData
    camera: camera_model.BlenderCamera
    """Static settings (first frame) and the render settings all shots share."""
    rotation_mode: str
    location: list[keyframes.ChannelKeys]
    rotation: list[keyframes.ChannelKeys]
    lens: keyframes.ChannelKeys
    shift: list[keyframes.ChannelKeys]


def _lens_settings(shot: ShotData, width: int, height: int) -> list[camera_model.BlenderCamera]:
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


def _check_pixel_aspect(shots: list[ShotData]) -> None:
    """Blender has one pixel aspect per scene: fx / fy must be the same in every frame."""
    reference = shots[0].K[0, 0] / shots[0].K[0, 1]
    for shot in shots:
        ratio = shot.K[:, 0] / shot.K[:, 1]
        bad = np.flatnonzero(np.abs(ratio - reference) > 1e-9 * reference)
        if len(bad):
            raise SceneError(f"{shot.path}.K[{bad[0]}]: fx / fy = {ratio[bad[0]]:.9g} differs "
                             f"from {reference:.9g} in the first frame; Blender has one pixel "
                             "aspect per scene")


def _plan_camera(shot: ShotData, resolution: tuple[int, int], unit: float, rotation_mode: str,
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


def _set_prompts(scene: bpy.types.Scene, shots: list[ShotData], prompt: str) -> None:
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
    try:
        shots, resolution, fps, prompt = parse_sequence(data)
    except ShotDataError as error:
        raise SceneError(str(error)) from None
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
