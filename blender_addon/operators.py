"""Operators: thin wrappers that read the scene, call plain functions and write the result."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import scene_io


class SHOTBRIDGE_OT_export_shots(bpy.types.Operator):
    """Export the shots (markers bound to cameras) and subjects as a ShotSequence file"""

    bl_idname = "shotbridge.export_shots"
    bl_label = "Export Shots"
    bl_options = {"REGISTER"}

    filepath: StringProperty(name="File Path", subtype="FILE_PATH",
                             description="ShotSequence .json to write")

    format: EnumProperty(
        name="Format",
        items=(("SHOTS", "ShotSequence", "One ShotSequence JSON with every shot and subject"),),
        default="SHOTS",
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.filepath:
            self.report({"ERROR"}, "Export Shots: no file path given")
            return {"CANCELLED"}
        try:
            data = scene_io.export_sequence(context.scene)
        except scene_io.SceneError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(self.filepath))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data) + "\n")
        self.report({"INFO"}, f"Exported {len(data['shots'])} shot(s) to {path}")
        return {"FINISHED"}


classes = (SHOTBRIDGE_OT_export_shots,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
