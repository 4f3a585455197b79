"""The "ShotBridge" tab in the 3D viewport's sidebar (N panel)."""

from __future__ import annotations

import bpy

from . import scene_io


class ShotBridgePanel:
    """Shared placement of every ShotBridge panel."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ShotBridge"


class VIEW3D_PT_shotbridge_shots(ShotBridgePanel, bpy.types.Panel):
    """Shots from timeline markers bound to cameras, with a prompt each."""

    bl_label = "Shots"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        scene = context.scene
        settings = scene.shotbridge
        layout.prop(settings, "global_prompt", text="", icon="TEXT")
        try:
            shots = scene_io.read_shots(scene)
        except scene_io.SceneError as error:
            box = layout.box()
            box.alert = True
            for line in _wrap(str(error)):
                box.label(text=line)
            return
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
    """Export shots, import planned shots, and the backend's actions."""

    bl_label = "Export / Import"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column(align=True)
        col.operator("shotbridge.export_shots", text="Export ShotSequence",
                     icon="EXPORT").format = "SHOTS"
        col.operator("shotbridge.export_shots", text="Export RealEstate10K per Shot",
                     icon="EXPORT").format = "REALESTATE10K"
        col.operator("shotbridge.import_shots", text="Import Planned Shots", icon="IMPORT")
        col = layout.column(align=True)
        # Greyed until the backend service is wired (their poll explains why in the tooltip).
        col.operator("shotbridge.plan_shots", icon="OUTLINER_OB_CAMERA")
        col.operator("shotbridge.generate_preview", icon="RENDER_ANIMATION")


def _wrap(text: str, width: int = 48) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


classes = (VIEW3D_PT_shotbridge_shots, VIEW3D_PT_shotbridge_subjects, VIEW3D_PT_shotbridge_files)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
