"""ShotBridge: Blender shots to camera-controlled video models and back.

This module only registers; see ``scene_io`` (bpy <-> ShotSequence), ``camera_model`` (the
bpy-free camera math), ``client`` (the backend's HTTP API), ``service`` (worker -> queue ->
timer) and ``preview`` (playblasts and camera backgrounds).
"""

from __future__ import annotations

from . import operators, panels, preferences, properties, service

_modules = (preferences, properties, operators, panels, service)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
