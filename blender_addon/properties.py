"""The add-on's scene settings: one PropertyGroup behind ``scene.shotbridge``."""

from __future__ import annotations

import bpy
from bpy.props import CollectionProperty, StringProperty


class SHOTBRIDGE_PG_shot(bpy.types.PropertyGroup):
    """The prompt of one shot; ``name`` is the name of the shot's timeline marker."""

    prompt: StringProperty(name="Prompt", description="What happens in this shot")


class SHOTBRIDGE_PG_settings(bpy.types.PropertyGroup):
    """Everything ShotBridge keeps in a scene."""

    global_prompt: StringProperty(name="Global Prompt",
                                  description="What the whole sequence is about")
    shots: CollectionProperty(type=SHOTBRIDGE_PG_shot)


classes = (SHOTBRIDGE_PG_shot, SHOTBRIDGE_PG_settings)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.shotbridge = bpy.props.PointerProperty(type=SHOTBRIDGE_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.shotbridge
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
