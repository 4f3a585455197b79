"""Operators: thin wrappers that read the scene, call plain functions and write the result."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import pose_files, preview, scene_io, service
from .preferences import user_folder


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

    name: StringProperty(name="Shot",
                         description="Name of the shot's timeline marker (empty: a new shot_NNN "
                                     "for planning)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        shots = context.scene.shotbridge.shots
        name = self.name or next(f"shot_{n:03d}" for n in range(10, 100000, 10)
                                 if shots.get(f"shot_{n:03d}") is None)
        if shots.get(name) is None:
            shots.add().name = name
        return {"FINISHED"}


class SHOTBRIDGE_OT_remove_shot_prompt(bpy.types.Operator):
    """Remove this shot prompt"""

    bl_idname = "shotbridge.remove_shot_prompt"
    bl_label = "Remove Shot Prompt"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    name: StringProperty(name="Shot")

    def execute(self, context: bpy.types.Context) -> set[str]:
        shots = context.scene.shotbridge.shots
        index = shots.find(self.name)
        if index >= 0:
            shots.remove(index)
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


# -- the backend and previews: each reads the scene, calls service or preview, reports ------


class SHOTBRIDGE_OT_report(bpy.types.Operator):
    """Show a message from the backend link as a Blender report"""

    bl_idname = "shotbridge.report"
    bl_label = "ShotBridge Report"
    bl_options = {"INTERNAL"}

    level: StringProperty(default="INFO")
    message: StringProperty()

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({self.level if self.level in {"INFO", "WARNING", "ERROR"} else "INFO"},
                    self.message)
        return {"FINISHED"}


class SHOTBRIDGE_OT_backend_start(bpy.types.Operator):
    """Start the ShotBridge backend (the Python set in the preferences: -m backend serve)"""

    bl_idname = "shotbridge.backend_start"
    bl_label = "Start Backend"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if service.backend_process_running():
            cls.poll_message_set("The backend started from Blender is running")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        conn = service.connection(context)
        try:
            process = service.start_backend(service.backend_python(context), conn.port,
                                                 user_folder())
        except service.LinkError as error:
            self.report({"ERROR"}, f"Start Backend: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Starting the backend on {conn.address} (process {process.pid})")
        return {"FINISHED"}


class SHOTBRIDGE_OT_backend_stop(bpy.types.Operator):
    """Stop the backend that this Blender started"""

    bl_idname = "shotbridge.backend_stop"
    bl_label = "Stop Backend"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not service.backend_process_running():
            cls.poll_message_set("Only a backend started from this Blender can be stopped here")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        service.stop_backend(wait=False)
        return {"FINISHED"}


class SHOTBRIDGE_OT_backend_check(bpy.types.Operator):
    """Ask the backend for its status and models now"""

    bl_idname = "shotbridge.backend_check"
    bl_label = "Check Backend"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        service.check_health(service.connection(context))
        return {"FINISHED"}


class SHOTBRIDGE_OT_plan_shots(bpy.types.Operator):
    """Plan cameras for the shot list with the backend's planner (imported when it answers)"""

    bl_idname = "shotbridge.plan_shots"
    bl_label = "Plan Shots"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and not service.state.planning

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene, folder = context.scene, user_folder()
        image = None
        try:
            if scene.shotbridge.plan_use_image and scene.camera is not None:
                image = preview.first_frame_png(scene, scene.camera, scene.frame_current,
                                                folder, "plan")
            service.plan(scene, service.connection(context), folder, image)
        except (service.LinkError, preview.PreviewError, scene_io.SceneError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return {"FINISHED"}


class _ShotOperator:
    """Works on one shot (by marker name) or, with an empty name, on every shot."""

    bl_options = {"REGISTER"}

    shot: StringProperty(name="Shot", description="Shot name; empty for every shot")

    def shots(self, context: bpy.types.Context) -> list[scene_io.ShotSpec]:
        shots = scene_io.read_shots(context.scene)
        if self.shot:
            shots = [s for s in shots if s.name == self.shot]
            if not shots:
                raise scene_io.SceneError(f"no shot named {self.shot!r}")
        return shots


class SHOTBRIDGE_OT_generate_preview(_ShotOperator, bpy.types.Operator):
    """Generate a preview video with the backend's model; it plays behind the shot camera"""

    bl_idname = "shotbridge.generate_preview"
    bl_label = "Generate Preview"

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene, folder = context.scene, user_folder()
        try:
            shots = self.shots(context)
            images = {}
            if scene.shotbridge.use_image_condition:
                images = {s.name: preview.first_frame_png(scene, s.camera, s.frame_start, folder,
                                                          s.name) for s in shots}
            jobs = service.generate(scene, [s.name for s in shots],
                                         service.connection(context), folder, images)
        except (service.LinkError, preview.PreviewError, scene_io.SceneError) as error:
            self.report({"ERROR"}, f"Generate Preview: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Generate Preview: {len(jobs)} job(s) sent")
        return {"FINISHED"}


class SHOTBRIDGE_OT_cancel_preview(bpy.types.Operator):
    """Cancel this shot's preview generation"""

    bl_idname = "shotbridge.cancel_preview"
    bl_label = "Cancel Generation"
    bl_options = {"REGISTER", "INTERNAL"}

    shot: StringProperty(name="Shot")

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not service.cancel(context.scene.name, self.shot):
            self.report({"WARNING"}, f"{self.shot}: no generation to cancel")
            return {"CANCELLED"}
        return {"FINISHED"}


class SHOTBRIDGE_OT_layout_preview(_ShotOperator, bpy.types.Operator):
    """Playblast the shot through its camera (Workbench) and play it behind the camera"""

    bl_idname = "shotbridge.layout_preview"
    bl_label = "Layout Preview"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            shots = self.shots(context)
            for shot in shots:
                preview.layout_preview(context.scene, shot, user_folder())
        except (preview.PreviewError, scene_io.SceneError) as error:
            self.report({"ERROR"}, f"Layout Preview: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Layout preview of {len(shots)} shot(s) attached")
        return {"FINISHED"}


class SHOTBRIDGE_OT_remove_preview(_ShotOperator, bpy.types.Operator):
    """Remove the ShotBridge preview from the shot camera's background (and the sequencer)"""

    bl_idname = "shotbridge.remove_preview"
    bl_label = "Remove Preview"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            shots = self.shots(context)
        except scene_io.SceneError as error:
            self.report({"ERROR"}, f"Remove Preview: {error}")
            return {"CANCELLED"}
        for shot in shots:
            preview.remove_preview(context.scene, shot.camera, shot.name)
        return {"FINISHED"}


class SHOTBRIDGE_OT_free_gpu_memory(bpy.types.Operator):
    """Unload the backend's models and free their GPU memory"""

    bl_idname = "shotbridge.free_gpu_memory"
    bl_label = "Free GPU Memory"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not service.state.unloading

    def execute(self, context: bpy.types.Context) -> set[str]:
        service.unload(service.connection(context))
        return {"FINISHED"}


classes = (
    SHOTBRIDGE_OT_export_shots,
    SHOTBRIDGE_OT_import_shots,
    SHOTBRIDGE_OT_add_shot_prompt,
    SHOTBRIDGE_OT_remove_shot_prompt,
    SHOTBRIDGE_OT_add_subjects,
    SHOTBRIDGE_OT_report,
    SHOTBRIDGE_OT_backend_start,
    SHOTBRIDGE_OT_backend_stop,
    SHOTBRIDGE_OT_backend_check,
    SHOTBRIDGE_OT_plan_shots,
    SHOTBRIDGE_OT_generate_preview,
    SHOTBRIDGE_OT_cancel_preview,
    SHOTBRIDGE_OT_layout_preview,
    SHOTBRIDGE_OT_remove_preview,
    SHOTBRIDGE_OT_free_gpu_memory,
)


register, unregister = bpy.utils.register_classes_factory(classes)
