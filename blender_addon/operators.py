"""Operators: thin wrappers that read the scene, call plain functions and write the result."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import pose_files, scene_io


class SHOTBRIDGE_OT_export_shots(bpy.types.Operator):
    """Export the shots (markers bound to cameras) and subjects for video models"""

    bl_idname = "shotbridge.export_shots"
    bl_label = "Export Shots"
    bl_options = {"REGISTER"}

    filepath: StringProperty(
        name="File Path", subtype="FILE_PATH",
        description="ShotSequence .json, or for RealEstate10K a folder (one .txt per shot)",
    )
    format: EnumProperty(
        name="Format",
        items=(
            ("SHOTS", "ShotSequence", "One ShotSequence JSON with every shot and subject"),
            ("REALESTATE10K", "RealEstate10K", "One CameraCtrl / RealEstate10K .txt per shot"),
        ),
        default="SHOTS",
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self.filepath:
            stem = bpy.path.display_name_from_filepath(bpy.data.filepath) or "shots"
            self.filepath = stem + (".shots.json" if self.format == "SHOTS" else "_poses")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.filepath:
            self.report({"ERROR"}, "Export Shots: no file path given")
            return {"CANCELLED"}
        try:
            data = scene_io.export_sequence(context.scene)
        except scene_io.SceneError as error:
            self.report({"ERROR"}, f"Export Shots: {error}")
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(self.filepath))
        try:
            if self.format == "REALESTATE10K":
                written = pose_files.write_realestate10k(data, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(data) + "\n")
                written = [path]
        except (OSError, ValueError) as error:
            self.report({"ERROR"}, f"Export Shots: {error}")
            return {"CANCELLED"}
        where = written[0] if len(written) == 1 else written[0].parent
        self.report({"INFO"}, f"Exported {len(data['shots'])} shot(s), "
                              f"{len(data['objects'])} subject(s) to {where}")
        return {"FINISHED"}


class SHOTBRIDGE_OT_add_shot_prompt(bpy.types.Operator):
    """Give this shot a prompt"""

    bl_idname = "shotbridge.add_shot_prompt"
    bl_label = "Add Shot Prompt"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    name: StringProperty(name="Shot", description="Name of the shot's timeline marker")

    def execute(self, context: bpy.types.Context) -> set[str]:
        shots = context.scene.shotbridge.shots
        if shots.get(self.name) is None:
            shots.add().name = self.name
        return {"FINISHED"}


class SHOTBRIDGE_OT_add_subjects(bpy.types.Operator):
    """Add the selected objects to the ShotBridge Subjects collection"""

    bl_idname = "shotbridge.add_subjects"
    bl_label = "Add Selected as Subjects"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return bool(context.selected_objects)

    def execute(self, context: bpy.types.Context) -> set[str]:
        added = scene_io.add_subjects(context.scene, context.selected_objects)
        self.report({"INFO"}, f"{len(added)} subject(s) added" if added else
                    "The selected objects are subjects already")
        return {"FINISHED"}


class _BackendOperator:
    """Plan and generate run in the backend service, which this build does not talk to yet."""

    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        cls.poll_message_set("Needs the ShotBridge backend service (not connected in this "
                             "version): export the shots and use the command line for now")
        return False

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({"ERROR"}, f"{self.bl_label}: the backend service is not connected yet")
        return {"CANCELLED"}


class SHOTBRIDGE_OT_plan_shots(_BackendOperator, bpy.types.Operator):
    """Plan cameras for the shot list with the backend's planner"""

    bl_idname = "shotbridge.plan_shots"
    bl_label = "Plan Shots"


class SHOTBRIDGE_OT_generate_preview(_BackendOperator, bpy.types.Operator):
    """Generate a preview video of the shots with the backend's video model"""

    bl_idname = "shotbridge.generate_preview"
    bl_label = "Generate Preview"


class SHOTBRIDGE_OT_import_shots(bpy.types.Operator):
    """Import planned shots from a ShotSequence file as editable cameras and markers"""

    bl_idname = "shotbridge.import_shots"
    bl_label = "Import Shots"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="File Path", subtype="FILE_PATH",
                             description="ShotSequence .json to import")
    replace_edited: BoolProperty(
        name="Replace Edited Plan",
        description="Replace plan cameras even if they were edited since they were imported",
        default=False,
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self.filepath:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        edited = scene_io.edited_plan_cameras(context.scene)
        if edited and not self.replace_edited:
            self.replace_edited = True
            return context.window_manager.invoke_confirm(
                self, event, title="Replace edited plan cameras?",
                message=f"These plan cameras were edited: {', '.join(edited)}",
            )
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self.filepath:
            self.report({"ERROR"}, "Import Shots: no file path given")
            return {"CANCELLED"}
        path = Path(bpy.path.abspath(self.filepath))
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            self.report({"ERROR"}, f"Import Shots: {path} does not exist")
            return {"CANCELLED"}
        except json.JSONDecodeError as error:
            self.report({"ERROR"}, f"Import Shots: {path} is not valid JSON ({error})")
            return {"CANCELLED"}
        try:
            report = scene_io.import_sequence(context.scene, data,
                                              replace_edited=self.replace_edited)
        except scene_io.SceneError as error:
            self.report({"ERROR"}, f"Import Shots: {path.name}: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, report.summary())
        return {"FINISHED"}


classes = (
    SHOTBRIDGE_OT_export_shots,
    SHOTBRIDGE_OT_import_shots,
    SHOTBRIDGE_OT_add_shot_prompt,
    SHOTBRIDGE_OT_add_subjects,
    SHOTBRIDGE_OT_plan_shots,
    SHOTBRIDGE_OT_generate_preview,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
