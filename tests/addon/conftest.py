"""Fixtures for the add-on's tests: the real ``bpy`` with ShotBridge registered."""

from __future__ import annotations

import bpy
import pytest

import blender_addon


def ensure_registered() -> None:
    """Register the add-on once per process (registration survives factory resets)."""
    if not hasattr(bpy.types, "SHOTBRIDGE_OT_export_shots"):
        blender_addon.register()


@pytest.fixture
def empty_scene() -> bpy.types.Scene:
    """A fresh empty scene (factory settings) with ShotBridge registered."""
    ensure_registered()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 48
    return scene
