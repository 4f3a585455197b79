"""Add-on preferences (Edit > Preferences > Add-ons > ShotBridge)."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import IntProperty, StringProperty


def default_backend_python() -> str:
    """The checkout's ``.venv`` Python (made by install.py) when the add-on runs from a checkout,
    else empty."""
    root = Path(__file__).resolve().parent.parent
    python = root / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return str(python) if python.exists() else ""


class SHOTBRIDGE_AP_preferences(bpy.types.AddonPreferences):
    """Where the backend lives and how to reach it."""

    bl_idname = __package__

    backend_python: StringProperty(
        name="Backend Python",
        description="Python of the ShotBridge environment made by install.py (.venv/bin/python); "
                    "the panel's Start button runs '<this> -m backend serve --port <port>'",
        subtype="FILE_PATH",
        default=default_backend_python(),
    )
    backend_port: IntProperty(name="Port", default=7862, min=1024, max=65535,
                              description="Port of the backend on 127.0.0.1")
    backend_token: StringProperty(
        name="Token", subtype="PASSWORD",
        description="Bearer token of the backend (read from its token file when left empty)",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "backend_python")
        row = layout.row()
        row.prop(self, "backend_port")
        row.prop(self, "backend_token")
        layout.label(text=f"Files: {user_folder()}", icon="FILE_FOLDER")


def preferences(context: bpy.types.Context | None = None) -> SHOTBRIDGE_AP_preferences | None:
    """The add-on's preferences, or None when it is not enabled as an extension."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def user_folder() -> Path:
    """The extension's writable folder (exports, previews), created on first use."""
    try:
        return Path(bpy.utils.extension_path_user(__package__, create=True))
    except ValueError:
        # Imported as a plain module (tests, headless jobs) rather than as an installed extension.
        folder = Path(bpy.utils.user_resource("DATAFILES", path="shotbridge", create=True))
        return folder


classes = (SHOTBRIDGE_AP_preferences,)


register, unregister = bpy.utils.register_classes_factory(classes)
