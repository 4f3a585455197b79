"""Per-frame world matrices and lens data of cameras and subjects, with one pass over the timeline.

Blender gives an object's world matrix at a frame in two ways, and this module uses both:

Frame stepping
    ``scene.frame_set(frame)`` then ``obj.matrix_world``: always right (constraints, drivers,
    physics), but every step evaluates the whole scene. Whatever needs it shares one pass.
The fcurve path
    When the matrix depends only on fcurves of the object and its parents
    (:func:`fcurve_path_reason` is None), the fcurves are evaluated for every frame at once and the
    matrix is composed as Blender composes it, so no frame is stepped for that object.

This module is the fcurve path's ``bpy`` edge: it decides which objects take it and reads them into
plain data (keys through ``foreach_get``, current values, hard ranges, parents); the evaluation and
composition, and what of Blender they reproduce, are in the bpy-free :mod:`..fcurve_math`. What
it reads as Blender 5.0 applies it: the action's channelbag for the assigned slot; fcurves that
are muted, disabled or empty are skipped (a muted *group* is not, in 5.0) and the property keeps
its value; easing interpolations, modifiers and baked samples go through ``FCurve.evaluate`` per
frame. Not detectable from the scene data, hence not checked: Python frame-change handlers that
move objects, and drivers or fcurves stored on *other* data-blocks whose paths reach into an
object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import bpy
import numpy as np
from bpy_extras import anim_utils

from .. import fcurve_math
from ..fcurve_math import TRANSFORM_CHANNELS

LENS_CHANNELS = {"lens": 0, "shift_x": 0, "shift_y": 0, "sensor_width": 0, "sensor_height": 0}
"""Camera data properties the fcurve path evaluates (0: not an array)."""
_LENS_READ = (*LENS_CHANNELS, "sensor_fit")
# Animated or driven, these change the matrix or the lens in ways the fcurve path does not model.
_TRANSFORM_OTHERS = frozenset(
    {"rotation_mode", "matrix_world", "matrix_basis", "matrix_local", "matrix_parent_inverse"})
_LENS_OTHERS = frozenset({"sensor_fit", "type", "angle", "angle_x", "angle_y"})


# ------------------------------------------------------------------------------------------------
# Which objects take the fcurve path


def _is_evaluated(fcurve: bpy.types.FCurve) -> bool:
    """Whether Blender's animation system applies ``fcurve`` (``is_fcurve_evaluatable``).

    Blender 5.0's layered-action evaluation skips muted, disabled and empty curves but not the
    curves of a muted group.
    """
    return not (fcurve.mute or not fcurve.is_valid or fcurve.is_empty)


def _channelbag(id_data: bpy.types.ID):
    adt = id_data.animation_data
    if adt is None:
        return None
    return anim_utils.action_get_channelbag_for_slot(adt.action, adt.action_slot)


def _animation_reason(id_data: bpy.types.ID, channels: Mapping[str, int],
                      others: frozenset[str], owner: str = "object") -> str | None:
    """Why the animation of ``channels`` on ``id_data`` is more than its action's fcurves."""
    adt = id_data.animation_data
    if adt is None:
        return None
    prefix = "" if owner == "object" else f"{owner} "
    for fcurve in adt.drivers:
        if fcurve.data_path in channels or fcurve.data_path in others:
            index = f"[{fcurve.array_index}]" if channels.get(fcurve.data_path) else ""
            return f"driver on {prefix}{fcurve.data_path}{index}"
    if len(adt.nla_tracks):
        return f"NLA tracks on the {owner}"
    action = adt.action
    if action is None or adt.action_slot is None:
        return None
    if len(action.layers) > 1 or any(len(layer.strips) > 1 for layer in action.layers):
        return f"layered action {action.name!r} on the {owner}"
    channelbag = _channelbag(id_data)
    for fcurve in channelbag.fcurves if channelbag is not None else ():
        if fcurve.data_path in others and _is_evaluated(fcurve):
            return f"animated {prefix}{fcurve.data_path}"
    return None


def _transform_reason(obj: bpy.types.Object) -> str | None:
    for constraint in obj.constraints:
        if constraint.enabled:
            return f"constraint {constraint.name!r}"
    if obj.rigid_body is not None:
        return "rigid body"
    reason = _animation_reason(obj, TRANSFORM_CHANNELS, _TRANSFORM_OTHERS)
    if reason is not None or obj.parent is None:
        return reason
    parent = obj.parent
    if obj.parent_type != "OBJECT":
        return f"{obj.parent_type.lower()} parent {parent.name!r}"
    if parent.type == "CURVE" and parent.data.use_path:
        return f"parent {parent.name!r} is a path curve"
    reason = _transform_reason(parent)
    return None if reason is None else f"parent {parent.name!r}: {reason}"


def fcurve_path_reason(obj: bpy.types.Object) -> str | None:
    """None when ``obj``'s world matrix (and a camera's lens) depends only on fcurves, else why not.

    The fcurve path needs: no enabled constraint and no rigid body on the object or its parents,
    object parenting only (no bone, vertex or armature parent, no path curve), no driver and no NLA
    on the transform channels (or on the camera data's lens, shift and sensor), and nothing
    animated that the composition does not model (``rotation_mode``, ``sensor_fit``...).
    Returns a short reason such as ``"constraint 'Track To'"`` or ``"driver on
    rotation_euler[2]"``; a parent's reason is prefixed with ``"parent 'Name': "``.
    """
    reason = _transform_reason(obj)
    if reason is None and obj.type == "CAMERA":
        reason = _animation_reason(obj.data, LENS_CHANNELS, _LENS_OTHERS, "camera data")
    return reason


def _channel_fcurves(id_data: bpy.types.ID,
                     channels: Mapping[str, int]) -> dict[tuple[str, int], bpy.types.FCurve]:
    """The fcurves Blender applies to ``channels`` by (path, index); of two, the last wins."""
    channelbag = _channelbag(id_data)
    found: dict[tuple[str, int], bpy.types.FCurve] = {}
    for fcurve in channelbag.fcurves if channelbag is not None else ():
        size = channels.get(fcurve.data_path)
        if size is None or not _is_evaluated(fcurve):
            continue
        if size == 0:  # not an array: Blender ignores the index
            found[(fcurve.data_path, 0)] = fcurve
        elif 0 <= fcurve.array_index < size:
            found[(fcurve.data_path, fcurve.array_index)] = fcurve
    return found


# ------------------------------------------------------------------------------------------------
# Reading fcurves and channels into plain data


def _read_keys(fcurve: bpy.types.FCurve) -> fcurve_math.Keys | None:
    """The keys of ``fcurve`` when :func:`.fcurve_math.evaluate_keys` reproduces it, else None."""
    points = fcurve.keyframe_points
    count = len(points)
    if count == 0 or len(fcurve.modifiers) or len(fcurve.sampled_points):
        return None
    arrays = {}
    for name in ("co", "handle_left", "handle_right"):
        arrays[name] = np.empty(2 * count, np.float32)
        points.foreach_get(name, arrays[name])
    ipo = np.empty(count, np.int32)
    points.foreach_get("interpolation", ipo)
    return fcurve_math.keys_from_points(
        arrays["co"].reshape(count, 2), arrays["handle_left"].reshape(count, 2),
        arrays["handle_right"].reshape(count, 2), ipo, fcurve.extrapolation == "CONSTANT")


def _read_curve(fcurve: bpy.types.FCurve, times: np.ndarray) -> fcurve_math.Keys | np.ndarray:
    """The keys of ``fcurve``, or its values at ``times`` (M,) where only ``FCurve.evaluate`` will
    do: what :func:`.fcurve_math.evaluate_curves` takes."""
    keys = _read_keys(fcurve)
    if keys is not None:
        return keys
    return np.array([fcurve.evaluate(float(t)) for t in times], np.float32)


def evaluate_fcurves(fcurves: Sequence[bpy.types.FCurve], times: np.ndarray) -> np.ndarray:
    """Values of ``fcurves`` at evaluation ``times``, as ``FCurve.evaluate`` gives them.

    times: (M,) frames (float32 evaluation times). Returns (C, M) float32. Curves with constant,
    linear and Bezier keys only and no modifiers are evaluated all at once, with Blender's float32
    operations in Blender's order; the others (easing interpolations, modifiers, baked samples)
    call ``FCurve.evaluate`` for each time.
    """
    times = np.asarray(times, np.float32).reshape(-1)
    return fcurve_math.evaluate_curves([_read_curve(fcurve, times) for fcurve in fcurves], times)


def _read_channels(items: Sequence[bpy.types.ID], channels: Mapping[str, int],
                   times: np.ndarray) -> fcurve_math.Channels:
    """``channels`` of n data-blocks of one type: current values, hard ranges, applied fcurves."""
    targets, curves = [], []
    for i, item in enumerate(items):
        for (name, index), fcurve in _channel_fcurves(item, channels).items():
            targets.append((name, i, index))
            curves.append(_read_curve(fcurve, times))
    static = {name: np.array([np.reshape(getattr(item, name), -1) for item in items], np.float32)
              for name in channels}
    props = items[0].bl_rna.properties
    ranges = {name: (np.float32(props[name].hard_min), np.float32(props[name].hard_max))
              for name in channels}
    return fcurve_math.Channels(static, ranges, targets, curves)


def _depth(obj: bpy.types.Object) -> int:
    return 0 if obj.parent is None else 1 + _depth(obj.parent)


def _read_chunk(objects: Sequence[bpy.types.Object], times: np.ndarray) -> fcurve_math.ObjectChunk:
    return fcurve_math.ObjectChunk(
        pointers=[obj.as_pointer() for obj in objects],
        parents=[obj.parent.as_pointer() if obj.parent else None for obj in objects],
        parent_inverse=np.array([obj.matrix_parent_inverse for obj in objects], np.float64),
        modes=[obj.rotation_mode for obj in objects],
        channels=_read_channels(objects, TRANSFORM_CHANNELS, times))


def _world_matrices(objects: Iterable[bpy.types.Object],
                    times: np.ndarray) -> dict[int, np.ndarray]:
    """World matrices of objects on the fcurve path at evaluation times (no frame is stepped).

    Returns ``{obj.as_pointer(): (M, 4, 4) float64}`` for the objects and their parents. Blender
    is read here, on the calling thread only, in chunks of one parent depth and rotation mode;
    :func:`.fcurve_math.world_matrices` composes them on a thread pool.
    """
    times = np.asarray(times, np.float32)
    closure: dict[int, bpy.types.Object] = {}
    for obj in objects:
        while obj is not None and obj.as_pointer() not in closure:
            closure[obj.as_pointer()] = obj
            obj = obj.parent
    by_depth: dict[int, list[bpy.types.Object]] = {}
    for obj in closure.values():
        by_depth.setdefault(_depth(obj), []).append(obj)
    workers = fcurve_math.pool_size()
    levels = []
    for depth in sorted(by_depth):
        level = sorted(by_depth[depth], key=lambda obj: obj.rotation_mode)
        size = fcurve_math.chunk_size(len(level), times.size, workers)
        levels.append([_read_chunk(level[i:i + size], times) for i in range(0, len(level), size)])
    return fcurve_math.world_matrices(levels, times, workers)


# ------------------------------------------------------------------------------------------------
# The timeline


@dataclass(frozen=True)
class CameraSamples:
    """One camera at the frames it is needed."""

    frames: np.ndarray
    """(N,) int frames, ascending."""
    matrix_world: np.ndarray
    """(N, 4, 4) float64 ``matrix_world`` (Blender camera axes, object scale included)."""
    lens: np.ndarray
    """(N,) focal length in mm."""
    shift_x: np.ndarray
    """(N,) horizontal lens shift."""
    shift_y: np.ndarray
    """(N,) vertical lens shift."""
    sensor_width: np.ndarray
    """(N,) sensor width in mm."""
    sensor_height: np.ndarray
    """(N,) sensor height in mm."""
    sensor_fit: tuple[str, ...]
    """(N,) ``Camera.sensor_fit``."""


@dataclass(frozen=True)
class TimelineSamples:
    """What :func:`sample_timeline` read: cameras at their frames, subjects over a range."""

    cameras: dict[str, CameraSamples]
    """By camera object name."""
    subjects: dict[str, np.ndarray]
    """By subject name: (M, 4, 4) float64 ``matrix_world`` at ``subject_frames``."""
    subject_frames: np.ndarray
    """(M,) int frames of the subject matrices."""
    reasons: dict[str, str | None]
    """By object name: None for the fcurve path, else why it was frame-stepped."""
    stepped_frames: tuple[int, ...]
    """The frames the one stepping pass visited, ascending; empty when nothing needed it."""


def _eval_times(scene: bpy.types.Scene, frames: np.ndarray) -> np.ndarray:
    """Animation evaluation times of whole ``frames`` (N,), time remapping applied: (N,) float32."""
    return fcurve_math.eval_times(frames, scene.render.frame_map_old, scene.render.frame_map_new)


def _unevaluated(scene: bpy.types.Scene, objects: Iterable[bpy.types.Object]) -> set[int]:
    """Objects a frame change leaves stale (disabled in viewports, not in the view layer)."""
    if scene != bpy.context.scene:
        return set()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return {obj.as_pointer() for obj in objects if obj.evaluated_get(depsgraph) == obj}


@dataclass(frozen=True)
class _Request:
    obj: bpy.types.Object
    frames: np.ndarray
    """(N,) int: every frame the object is needed at (as a camera or a subject), ascending."""
    camera: bool


def _requests(cameras, subjects, wanted, subject_frames) -> dict[int, _Request]:
    """Each object once, with every frame it is needed at, whether as a camera or a subject."""
    out: dict[int, _Request] = {}
    for obj, frames, camera in ([(cam, wanted[cam.name], True) for cam in cameras]
                                + [(obj, subject_frames, False) for obj in subjects]):
        known = out.get(obj.as_pointer())
        if known is not None:
            frames, camera = np.union1d(known.frames, frames), known.camera or camera
        out[obj.as_pointer()] = _Request(obj, frames, camera)
    return out


def _step(scene: bpy.types.Scene, requests: Sequence[_Request]):
    """The one pass of ``frame_set`` over the frames ``requests`` ask for, then the restore.

    Returns (frames stepped, {pointer: (matrices (N, 4, 4), lens rows or None)}) in the order of
    each request's frames.
    """
    if not requests:
        return (), {}
    frames = np.unique(np.concatenate([request.frames for request in requests])).tolist()
    if scene.rigidbody_world is not None:  # a simulation advances one frame at a time
        frames = list(range(frames[0], frames[-1] + 1))
    wanted = [set(request.frames.tolist()) for request in requests]
    matrices: list[list[np.ndarray]] = [[] for _ in requests]
    lens: list[list[tuple]] = [[] for _ in requests]
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        for frame in frames:
            scene.frame_set(frame)
            for i, request in enumerate(requests):
                if frame in wanted[i]:
                    matrices[i].append(np.array(request.obj.matrix_world, np.float64))
                    if request.camera:
                        data = request.obj.data
                        lens[i].append(tuple(getattr(data, name) for name in _LENS_READ))
    finally:
        scene.frame_set(current, subframe=subframe)
    return tuple(frames), {request.obj.as_pointer(): (np.array(stack).reshape(-1, 4, 4), rows)
                           for request, stack, rows in zip(requests, matrices, lens, strict=True)}


@dataclass(frozen=True)
class _Sampled:
    """Both paths' results, and where each object's frames are in them."""

    requests: dict[int, _Request]
    fast_frames: np.ndarray
    world: dict[int, np.ndarray]
    """Fcurve path: pointer -> (len(fast_frames), 4, 4)."""
    records: dict[int, tuple[np.ndarray, list[tuple]]]
    """Stepping: pointer -> (matrices, lens rows) at the request's frames."""

    def rows(self, obj: bpy.types.Object, frames: np.ndarray) -> np.ndarray | slice:
        pointer = obj.as_pointer()
        sampled = self.requests[pointer].frames if pointer in self.records else self.fast_frames
        return slice(None) if np.array_equal(frames, sampled) else np.searchsorted(sampled, frames)

    def matrices(self, obj: bpy.types.Object, frames: np.ndarray) -> np.ndarray:
        pointer = obj.as_pointer()
        stack = self.records[pointer][0] if pointer in self.records else self.world[pointer]
        return stack[self.rows(obj, frames)]

    def camera(self, scene, cam: bpy.types.Object, frames: np.ndarray) -> CameraSamples:
        if cam.as_pointer() in self.records:
            rows = self.records[cam.as_pointer()][1]
            rows = [rows[i] for i in np.arange(len(rows))[self.rows(cam, frames)]]
            lens = {name: np.array([row[i] for row in rows], np.float64).reshape(-1)
                    for i, name in enumerate(LENS_CHANNELS)}
            fit = tuple(row[-1] for row in rows)
        else:
            times = _eval_times(scene, frames)
            read = _read_channels([cam.data], LENS_CHANNELS, times)
            values = fcurve_math.channel_arrays(read, times)
            lens = {name: np.broadcast_to(v[0, 0], frames.shape).astype(np.float64)
                    for name, v in values.items()}
            fit = (cam.data.sensor_fit,) * frames.size
        return CameraSamples(frames, self.matrices(cam, frames), sensor_fit=fit, **lens)


def _reasons(scene: bpy.types.Scene, requests: dict[int, _Request]) -> dict[str, str | None]:
    """Per object name: None for the fcurve path, else why it must be frame-stepped."""
    stale = _unevaluated(scene, (request.obj for request in requests.values()))
    reasons: dict[str, str | None] = {}
    for pointer, request in requests.items():
        obj = request.obj
        reason = fcurve_path_reason(obj) if request.camera else _transform_reason(obj)
        if reason is None and pointer in stale:
            reason = "not evaluated by the view layer (disabled in viewports or not in the scene)"
        reasons[obj.name] = reason
    return reasons


def sample_timeline(scene: bpy.types.Scene, cameras: Sequence[bpy.types.Object],
                    subjects: Sequence[bpy.types.Object],
                    frames_needed: Mapping[str, Iterable[int]], *,
                    subject_frames: Iterable[int] | None = None) -> TimelineSamples:
    """World matrices and lens data of ``cameras`` and world matrices of ``subjects``.

    frames_needed: camera name -> the frames that camera is needed at. Subjects are sampled at
    ``subject_frames`` (default: every frame from the first to the last frame needed). Objects on
    the fcurve path (:func:`fcurve_path_reason` is None) are evaluated without stepping; the rest
    share one ascending pass of ``scene.frame_set``, none at all when nothing needs it, and
    ``scene.frame_current`` is restored afterwards.
    """
    wanted = {cam.name: np.unique(np.fromiter(frames_needed.get(cam.name, ()), int))
              for cam in cameras}
    if subject_frames is None:
        every = np.concatenate([np.zeros(0, int), *wanted.values()])
        subject_frames = range(every.min(), every.max() + 1) if every.size else ()
    sub_frames = np.unique(np.fromiter(subject_frames, int))
    requests = _requests(cameras, subjects, wanted, sub_frames)
    reasons = _reasons(scene, requests)
    fast = [request for request in requests.values() if reasons[request.obj.name] is None]
    distinct = {id(request.frames): request.frames for request in fast}.values()
    fast_frames = np.unique(np.concatenate([np.zeros(0, int), *distinct]))
    world = _world_matrices([request.obj for request in fast],
                            _eval_times(scene, fast_frames)) if fast_frames.size else {}
    stepped_frames, records = _step(
        scene, [request for request in requests.values() if reasons[request.obj.name]])
    sampled = _Sampled(requests, fast_frames, world, records)
    return TimelineSamples(
        cameras={cam.name: sampled.camera(scene, cam, wanted[cam.name]) for cam in cameras},
        subjects={obj.name: sampled.matrices(obj, sub_frames) for obj in subjects},
        subject_frames=sub_frames, reasons=reasons, stepped_frames=stepped_frames)
