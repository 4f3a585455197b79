"""The add-on's only reader of shots from ``bpy``: Blender scene -> canonical ShotSequence data.

Operators call :func:`export_sequence` and write what it returns; all camera math lives in the
bpy-free :mod:`.camera_model`. The layout of the returned data is the ShotSequence contract
(version 1, ``backend/schema/shot_sequence.v1.schema.json``); the add-on cannot import the backend,
so the tests check this module's output against that schema and the golden files.

Shots come from timeline markers bound to cameras: a shot runs from its marker to the frame before
the next bound marker, the last one to the scene's end. With no bound marker the scene camera films
one shot over the scene's range. Subjects are the objects of the "ShotBridge Subjects" collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from .. import camera_model
from ..shot_data import FORMAT, VERSION
from . import sampling
from .subjects import subjects_collection


class SceneError(ValueError):
    """A scene that cannot be exported; the message says what to change, in the animator's terms."""


@dataclass(frozen=True)
class ShotSpec:
    """One shot as the timeline defines it, before anything is evaluated."""

    name: str
    camera: bpy.types.Object
    frame_start: int
    frame_end: int
    prompt: str


def _shot_prompt(scene: bpy.types.Scene, name: str) -> str:
    settings = getattr(scene, "shotbridge", None)
    if settings is None:
        return ""
    item = settings.shots.get(name)
    return item.prompt if item is not None else ""


def _check_camera(obj: bpy.types.Object | None, where: str) -> bpy.types.Object:
    if obj is None:
        raise SceneError(f"{where}: no camera. Set the scene camera or bind a camera to a marker "
                         "(Timeline > Marker > Bind Camera to Markers)")
    if obj.type != "CAMERA":
        raise SceneError(f"{where}: {obj.name!r} is not a camera (its type is {obj.type}); bind "
                         "a camera to this marker")
    if obj.data.type != "PERSP":
        kind = {"ORTHO": "orthographic", "PANO": "panoramic"}.get(obj.data.type, obj.data.type)
        raise SceneError(f"{where}: camera {obj.name!r} is {kind}; ShotBridge exports perspective "
                         "cameras only (Camera properties > Lens > Type: Perspective)")
    return obj


def read_shots(scene: bpy.types.Scene) -> list[ShotSpec]:
    """The shots the timeline defines (markers bound to cameras), in timeline order."""
    bound = sorted((m for m in scene.timeline_markers if m.camera is not None),
                   key=lambda m: m.frame)
    if not bound:
        camera = _check_camera(scene.camera, f"scene {scene.name!r}")
        return [ShotSpec(camera.name, camera, scene.frame_start, scene.frame_end,
                         _shot_prompt(scene, camera.name))]
    shots = []
    for i, marker in enumerate(bound):
        camera = _check_camera(marker.camera, f"marker {marker.name!r} (frame {marker.frame})")
        end = bound[i + 1].frame - 1 if i + 1 < len(bound) else scene.frame_end
        if end < marker.frame:
            reason = (f"the next marker {bound[i + 1].name!r} sits on the same frame"
                      if i + 1 < len(bound) else f"it starts after the scene end {scene.frame_end}")
            raise SceneError(f"marker {marker.name!r} (frame {marker.frame}): shot of zero length: "
                             f"{reason}")
        shots.append(ShotSpec(marker.name, camera, marker.frame, end,
                              _shot_prompt(scene, marker.name)))
    return shots


def read_subjects(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The subjects: objects of the "ShotBridge Subjects" collection (with its children), or,
    when that collection is missing or empty, the selected objects other than cameras."""
    collection = subjects_collection(scene)
    if collection is not None and len(collection.all_objects):
        objects = list(collection.all_objects)
    else:
        objects = [obj for obj in scene.objects if obj.select_get() and obj.type != "CAMERA"]
    return sorted(objects, key=lambda obj: obj.name)


def camera_settings(scene: bpy.types.Scene, camera: bpy.types.Object) -> camera_model.BlenderCamera:
    """The current (evaluated) lens and render settings of ``camera`` as plain data."""
    data, render = camera.data, scene.render
    return camera_model.BlenderCamera(
        lens=data.lens, sensor_width=data.sensor_width, sensor_height=data.sensor_height,
        sensor_fit=data.sensor_fit, shift_x=data.shift_x, shift_y=data.shift_y,
        resolution_x=render.resolution_x, resolution_y=render.resolution_y,
        resolution_percentage=render.resolution_percentage,
        pixel_aspect_x=render.pixel_aspect_x, pixel_aspect_y=render.pixel_aspect_y,
    )


def _sample_timeline(scene, shots, subjects, frame_start, frame_end):
    """Every shot camera's state at its shots' frames and every subject's pose over the range.

    One :func:`.sampling.sample_timeline` call: fcurve-only objects are evaluated directly, the
    others share one pass of frame steps.
    """
    cameras = list({shot.camera.name: shot.camera for shot in shots}.values())
    needed: dict[str, list[int]] = {camera.name: [] for camera in cameras}
    for shot in shots:
        needed[shot.camera.name].extend(range(shot.frame_start, shot.frame_end + 1))
    timeline = sampling.sample_timeline(scene, cameras, subjects, needed,
                                        subject_frames=range(frame_start, frame_end + 1))
    render = scene.render
    samples: dict[str, dict[int, tuple]] = {}
    for name, cam in timeline.cameras.items():
        samples[name] = {
            int(frame): (cam.matrix_world[i], camera_model.BlenderCamera(
                lens=float(cam.lens[i]), sensor_width=float(cam.sensor_width[i]),
                sensor_height=float(cam.sensor_height[i]), sensor_fit=cam.sensor_fit[i],
                shift_x=float(cam.shift_x[i]), shift_y=float(cam.shift_y[i]),
                resolution_x=render.resolution_x, resolution_y=render.resolution_y,
                resolution_percentage=render.resolution_percentage,
                pixel_aspect_x=render.pixel_aspect_x, pixel_aspect_y=render.pixel_aspect_y))
            for i, frame in enumerate(cam.frames)}
    return samples, timeline.subjects


def _subject_box(obj: bpy.types.Object, unit: float) -> tuple[list[float], list[float]]:
    corners = np.array([tuple(corner) for corner in obj.bound_box]) * np.array(obj.scale) * unit
    return corners.min(axis=0).tolist(), corners.max(axis=0).tolist()


SCENE_POINTS = 512
"""How many static scene points the export samples (area-weighted over the visible meshes)."""


def sample_scene_points(scene: bpy.types.Scene, exclude: list[bpy.types.Object],
                        count: int = SCENE_POINTS, seed: int = 0) -> np.ndarray:
    """(M, 3) world points on the surfaces of the scene's visible meshes, ``exclude`` left out.

    Sampled area-weighted at the current frame from the evaluated meshes (modifiers applied),
    seeded. Their projections through a shot camera are exact camera-motion tracks, which holds
    for meshes that do not move: subjects are excluded, other moving meshes are sampled as they
    are now.
    """
    depsgraph = bpy.context.evaluated_depsgraph_get()
    skip = {obj.name for obj in exclude}
    triangles = []
    for obj in scene.objects:
        if obj.type != "MESH" or obj.name in skip or obj.hide_render or not obj.visible_get():
            continue
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        try:
            mesh.calc_loop_triangles()
            vertices = np.empty(len(mesh.vertices) * 3)
            mesh.vertices.foreach_get("co", vertices)
            indices = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
            mesh.loop_triangles.foreach_get("vertices", indices)
        finally:
            evaluated.to_mesh_clear()
        world = np.array(evaluated.matrix_world)
        vertices = vertices.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
        triangles.append(vertices[indices.reshape(-1, 3)])
    if not triangles:
        return np.zeros((0, 3))
    corners = np.concatenate(triangles)  # (T, 3 corners, 3)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0],
                                         corners[:, 2] - corners[:, 0]), axis=1)
    if area.sum() <= 0:
        return np.zeros((0, 3))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(corners), size=count, p=area / area.sum())
    # Uniform barycentric coordinates: fold the unit square onto the triangle.
    a, b = rng.random(count), rng.random(count)
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    picked = corners[chosen]
    return picked[:, 0] + a[:, None] * (picked[:, 1] - picked[:, 0]) + b[:, None] * (
        picked[:, 2] - picked[:, 0])


def export_sequence(scene: bpy.types.Scene) -> dict[str, Any]:
    """The scene's shots and subjects as ShotSequence JSON data (plain lists and numbers)."""
    shots = read_shots(scene)
    subjects = read_subjects(scene)
    unit = scene.unit_settings.scale_length or 1.0
    frame_start = min(s.frame_start for s in shots)
    frame_end = max(s.frame_end for s in shots)
    samples, subject_poses = _sample_timeline(scene, shots, subjects, frame_start, frame_end)

    objects, positions = [], {}
    for obj in subjects:
        poses = np.stack(subject_poses[obj.name])
        positions[obj.name] = poses[:, :3, 3] * unit
        rotations = camera_model.nearest_rotation(poses[:, :3, :3])
        box_min, box_max = _subject_box(obj, unit)
        objects.append({"name": obj.name, "frame_start": frame_start, "frame_end": frame_end,
                        "positions": positions[obj.name].tolist(),
                        "rotations": rotations.tolist(), "bbox_min": box_min, "bbox_max": box_max})

    width, height = camera_model.render_size(camera_settings(scene, shots[0].camera))
    out_shots = []
    for shot in shots:
        frames = range(shot.frame_start, shot.frame_end + 1)
        states = [samples[shot.camera.name][f] for f in frames]
        c2w = camera_model.c2w_from_matrix_world(np.stack([m for m, _ in states]))
        c2w[:, :3, 3] *= unit
        K = np.stack([camera_model.intrinsics_from_blender(cam) for _, cam in states])
        entry: dict[str, Any] = {
            "name": shot.name, "camera": shot.camera.name, "prompt": shot.prompt,
            "frame_start": shot.frame_start, "frame_end": shot.frame_end,
            "c2w": c2w.tolist(), "K": K.tolist(),
            "lens": {
                "lens": [cam.lens for _, cam in states],
                "shift_x": [cam.shift_x for _, cam in states],
                "shift_y": [cam.shift_y for _, cam in states],
                "sensor_width": states[0][1].sensor_width,
                "sensor_height": states[0][1].sensor_height,
                "sensor_fit": states[0][1].sensor_fit,
            },
        }
        tracks = []
        for obj in subjects:
            points = positions[obj.name][shot.frame_start - frame_start:
                                         shot.frame_end + 1 - frame_start]
            uv, depth = camera_model.project_tracks(K, c2w, points)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] <= width) & (uv[:, 1] >= 0) & (uv[:, 1] <= height)
            tracks.append({"name": obj.name, "uv": uv.tolist(),
                           "visible": ((depth > 0) & inside).tolist()})
        if tracks:
            entry["subjects"] = tracks
        out_shots.append(entry)

    settings = getattr(scene, "shotbridge", None)
    data: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "fps": scene.render.fps / scene.render.fps_base,
        "resolution": [width, height], "prompt": settings.global_prompt if settings else "",
        "shots": out_shots, "objects": objects,
    }
    points = sample_scene_points(scene, subjects) * unit
    if len(points):
        data["scene_points"] = points.tolist()
    data["metadata"] = {"source": {"app": f"Blender {bpy.app.version_string}",
                                   "file": bpy.data.filepath, "scene": scene.name,
                                   "unit_scale": unit}}
    return data
