"""The add-on's scene settings: one PropertyGroup behind ``scene.shotbridge``."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    StringProperty,
)

from .service import model_items


class SHOTBRIDGE_PG_shot(bpy.types.PropertyGroup):
    """The prompt of one shot; ``name`` is the name of the shot's timeline marker."""

    prompt: StringProperty(name="Prompt", description="What happens in this shot")


class SHOTBRIDGE_PG_settings(bpy.types.PropertyGroup):
    """Everything ShotBridge keeps in a scene."""

    global_prompt: StringProperty(name="Global Prompt",
                                  description="What the whole sequence is about")
    shots: CollectionProperty(type=SHOTBRIDGE_PG_shot)
    planner: EnumProperty(
        name="Planner",
        items=(("grammar", "Grammar", "Rule-based shot planner, needs no weights"),
               ("learned", "Learned", "Learned planner (needs its weights in the backend)")),
        default="grammar",
    )
    plan_use_image: BoolProperty(
        name="Send Camera View",
        description="Send the scene camera's view at the current frame (Workbench render) to the "
                    "planner",
        default=False,
    )
    model: EnumProperty(name="Model", items=model_items, default=0,
                        description="Video model of the backend that generates previews")
    seed: IntProperty(name="Seed", default=0, min=0, description="Seed of the generation")
    steps: IntProperty(name="Steps", default=0, min=0, max=200,
                       description="Denoising steps (0: the model's default)")
    use_image_condition: BoolProperty(
        name="First Frame as Image",
        description="Render each shot's first frame and send it as the image condition "
                    "(image-to-video models)",
        default=False,
    )
    image_engine: EnumProperty(
        name="Image Engine",
        items=(("WORKBENCH", "Workbench", "Fast render with the scene's viewport shading"),
               ("SCENE", "Scene Engine", "The scene's own render engine")),
        default="WORKBENCH",
    )
    preview_percentage: IntProperty(
        name="Preview Size", subtype="PERCENTAGE", default=50, min=5, max=100,
        description="Render size of layout previews and first-frame images, percent of the "
                    "scene's",
    )
    preview_alpha: FloatProperty(name="Opacity", default=0.8, min=0.0, max=1.0,
                                 subtype="FACTOR",
                                 description="Opacity of newly attached preview backgrounds")
    preview_strips: BoolProperty(
        name="Sequencer Strips",
        description="Also place previews as movie strips on the ShotBridge channel (5) of the "
                    "sequencer; with strips and Post Processing > Sequencer on, renders show "
                    "the sequencer",
        default=False,
    )


classes = (SHOTBRIDGE_PG_shot, SHOTBRIDGE_PG_settings)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.shotbridge = bpy.props.PointerProperty(type=SHOTBRIDGE_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.shotbridge
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
