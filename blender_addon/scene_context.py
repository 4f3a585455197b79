"""What the planner is told about the scene: subjects, the active camera, timing and frame size.

Plain JSON data for ``POST /plan``'s ``scene`` field, read at the current frame, in the
ShotSequence conventions (metres, OpenCV camera axes, pixel intrinsics at the render size).
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from . import camera_model, scene_io


def _world_box(obj: bpy.types.Object, unit: float) -> tuple[list[float], list[float]]:
    matrix = np.array(obj.matrix_world)
    corners = np.array([tuple(corner) for corner in obj.bound_box], dtype=np.float64)
    world = corners @ matrix[:3, :3].T + matrix[:3, 3]
    return (world.min(axis=0) * unit).tolist(), (world.max(axis=0) * unit).tolist()


def scene_context(scene: bpy.types.Scene) -> dict[str, Any]:
    """The scene as the planner sees it (subjects at the current frame, the scene camera)."""
    unit = scene.unit_settings.scale_length or 1.0
    render = scene.render
    # Evaluate constraints and drivers first: matrix_world may be stale after edits by script.
    view_layer = bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0]
    view_layer.update()
    subjects = []
    for obj in scene_io.read_subjects(scene):
        box_min, box_max = _world_box(obj, unit)
        subjects.append({"name": obj.name, "type": obj.type,
                         "position": (np.array(obj.matrix_world.translation) * unit).tolist(),
                         "bbox_min": box_min, "bbox_max": box_max})
    camera = None
    if scene.camera is not None and scene.camera.type == "CAMERA":
        settings = scene_io.camera_settings(scene, scene.camera)
        c2w = camera_model.c2w_from_matrix_world(np.array(scene.camera.matrix_world))
        c2w[:3, 3] *= unit
        perspective = scene.camera.data.type == "PERSP"
        camera = {"name": scene.camera.name, "c2w": c2w.tolist(),
                  "K": (camera_model.intrinsics_from_blender(settings).tolist()
                        if perspective else None),
                  "lens": settings.lens, "sensor_width": settings.sensor_width,
                  "sensor_height": settings.sensor_height, "sensor_fit": settings.sensor_fit}
    width = render.resolution_x * render.resolution_percentage // 100
    height = render.resolution_y * render.resolution_percentage // 100
    return {"fps": render.fps / render.fps_base, "resolution": [width, height],
            "frame_start": scene.frame_start, "frame_end": scene.frame_end,
            "frame_current": scene.frame_current, "unit_scale": unit,
            "subjects": subjects, "camera": camera}
