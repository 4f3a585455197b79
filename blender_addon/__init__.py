"""ShotBridge: Blender shots to camera-controlled video models and back.

This module only registers; see ``scene_io`` (bpy <-> ShotSequence) and ``camera_model`` (the
bpy-free camera math).
"""

from __future__ import annotations

from . import operators, panels, preferences, properties

_modules = (preferences, properties, operators, panels)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
