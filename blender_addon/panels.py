"""The "ShotBridge" tab in the 3D viewport's sidebar (N panel).

Panels only draw: what they show about the backend comes from :data:`.service.state`, which
the main-thread timer updates; nothing here waits on the network.
"""

from __future__ import annotations

import bpy

from . import preview, scene_io, service

_LIGHTS = {"ok": "STRIP_COLOR_04", "starting": "STRIP_COLOR_03", "down": "STRIP_COLOR_01",
           "unknown": "STRIP_COLOR_09"}


class ShotBridgePanel:
    """Shared placement of every ShotBridge panel."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ShotBridge"


def _message(layout: bpy.types.UILayout, text: str, error: bool = False) -> None:
    box = layout.box()
    box.alert = error
    for i, line in enumerate(_wrap(text)):
        box.label(text=line, icon=("ERROR" if error else "INFO") if i == 0 else "BLANK1")


def _status(state: service.LinkState) -> tuple[str, str]:
    """(light, one line) for the backend's status."""
    if state.health == "ok":
        return "ok", f"Running on {state.device} (v{state.version})"
    if service.backend_process_running():
        return "starting", "Starting..."
    if state.health == "down":
        return "down", "Not running"
    return "unknown", "Checking..."


class VIEW3D_PT_shotbridge_backend(ShotBridgePanel, bpy.types.Panel):
    """The backend service: status light, start/stop, model, GPU memory, last message."""

    bl_label = "Backend"

    def draw(self, context: bpy.types.Context) -> None:
        service.panel_drawn()
        state = service.state
        layout = self.layout
        light, text = _status(state)
        row = layout.row(align=True)
        row.label(text=text, icon=_LIGHTS[light])
        row.operator("shotbridge.backend_check", text="", icon="FILE_REFRESH")
        row = layout.row(align=True)
        row.operator("shotbridge.backend_start", icon="PLAY")
        row.operator("shotbridge.backend_stop", icon="PAUSE")
        if state.health == "down" and light == "down" and state.health_message:
            _message(layout, state.health_message, error=True)
        layout.prop(context.scene.shotbridge, "model")
        layout.operator("shotbridge.free_gpu_memory", icon="MEMORY")
        if state.message:
            _message(layout, state.message, state.message_is_error)


class VIEW3D_PT_shotbridge_preview_settings(ShotBridgePanel, bpy.types.Panel):
    """How previews are generated, rendered and shown."""

    bl_label = "Preview Settings"
    bl_parent_id = "VIEW3D_PT_shotbridge_backend"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.shotbridge
        layout = self.layout
        layout.use_property_split = True
        col = layout.column(align=True)
        col.prop(settings, "seed")
        col.prop(settings, "steps")
        col = layout.column()
        col.prop(settings, "use_image_condition")
        col.prop(settings, "image_engine")
        col.prop(settings, "preview_percentage")
        col.prop(settings, "preview_alpha")
        col.prop(settings, "preview_strips")


class VIEW3D_PT_shotbridge_shots(ShotBridgePanel, bpy.types.Panel):
    """Shots from timeline markers bound to cameras, with a prompt and a preview each."""

    bl_label = "Shots"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        scene = context.scene
        settings = scene.shotbridge
        layout.prop(settings, "global_prompt", text="", icon="TEXT")
        try:
            shots = scene_io.read_shots(scene)
        except scene_io.SceneError as error:
            _message(layout, str(error), error=True)
            return
        jobs = service.jobs_of(scene)
        for shot in shots:
            box = layout.box()
            row = box.row()
            row.label(text=shot.name, icon="MARKER_HLT")
            row.label(text=f"{shot.camera.name}  {shot.frame_start}-{shot.frame_end}",
                      icon="CAMERA_DATA")
            item = settings.shots.get(shot.name)
            if item is None:
                op = box.operator("shotbridge.add_shot_prompt", text="Add Prompt", icon="ADD")
                op.name = shot.name
            else:
                box.prop(item, "prompt", text="")
            _draw_shot_preview(box, shot, jobs.get(shot.name))
        row = layout.row(align=True)
        row.operator("shotbridge.layout_preview", text="Layout All",
                     icon="SEQUENCE").shot = ""
        row.operator("shotbridge.generate_preview", text="Generate All",
                     icon="RENDER_ANIMATION").shot = ""


def _draw_shot_preview(box: bpy.types.UILayout, shot: scene_io.ShotSpec,
                       job: service.ShotJob | None) -> None:
    row = box.row(align=True)
    row.operator("shotbridge.layout_preview", text="Layout", icon="SEQUENCE").shot = shot.name
    row.operator("shotbridge.generate_preview", text="Generate",
                 icon="RENDER_ANIMATION").shot = shot.name
    background = preview.shotbridge_background(shot.camera)
    if background is not None:
        row = box.row(align=True)
        row.prop(shot.camera.data, "show_background_images", text="", icon="HIDE_OFF")
        row.prop(background, "alpha", text=background.clip.get("shotbridge_kind", "Preview")
                 .capitalize())
        row.operator("shotbridge.remove_preview", text="", icon="X").shot = shot.name
    if job is None:
        return
    if job.active:
        row = box.row(align=True)
        row.progress(factor=job.progress, type="BAR", text=job.message)
        row.operator("shotbridge.cancel_preview", text="", icon="CANCEL").shot = shot.name
    elif job.status != "attached":
        _message(box, job.message, error=job.status in ("failed", "error", "interrupted"))


class VIEW3D_PT_shotbridge_plan(ShotBridgePanel, bpy.types.Panel):
    """Prompts in, planned cameras out: the backend's planner."""

    bl_label = "Plan"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.shotbridge
        layout.prop(settings, "global_prompt", text="", icon="TEXT")
        for item in settings.shots:
            row = layout.row(align=True)
            row.label(text=item.name)
            row.prop(item, "prompt", text="")
            row.operator("shotbridge.remove_shot_prompt", text="", icon="X").name = item.name
        layout.operator("shotbridge.add_shot_prompt", text="Add Shot Prompt",
                        icon="ADD").name = ""
        row = layout.row()
        row.prop(settings, "planner", text="")
        row.prop(settings, "plan_use_image")
        text = "Planning..." if service.state.planning else "Plan Shots"
        layout.operator("shotbridge.plan_shots", text=text, icon="OUTLINER_OB_CAMERA")


class VIEW3D_PT_shotbridge_subjects(ShotBridgePanel, bpy.types.Panel):
    """Subjects whose tracks are exported."""

    bl_label = "Subjects"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        subjects = scene_io.read_subjects(context.scene)
        if not subjects:
            layout.label(text="No subjects: add objects to", icon="INFO")
            layout.label(text=f'"{scene_io.SUBJECTS_COLLECTION}"')
        for obj in subjects:
            layout.label(text=obj.name, icon="OBJECT_DATA")
        layout.operator("shotbridge.add_subjects", icon="ADD")


class VIEW3D_PT_shotbridge_files(ShotBridgePanel, bpy.types.Panel):
    """Export shots and import planned shots as files."""

    bl_label = "Export / Import"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column(align=True)
        col.operator("shotbridge.export_shots", text="Export ShotSequence",
                     icon="EXPORT").format = "SHOTS"
        col.operator("shotbridge.export_shots", text="Export RealEstate10K per Shot",
                     icon="EXPORT").format = "REALESTATE10K"
        col.operator("shotbridge.import_shots", text="Import Planned Shots", icon="IMPORT")


def _wrap(text: str, width: int = 48) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


classes = (
    VIEW3D_PT_shotbridge_backend,
    VIEW3D_PT_shotbridge_preview_settings,
    VIEW3D_PT_shotbridge_shots,
    VIEW3D_PT_shotbridge_plan,
    VIEW3D_PT_shotbridge_subjects,
    VIEW3D_PT_shotbridge_files,
)


register, unregister = bpy.utils.register_classes_factory(classes)
