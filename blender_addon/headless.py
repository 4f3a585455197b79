"""Headless Blender jobs, run in their own process: ``python -m blender_addon.headless demo ...``.

The backend never imports ``bpy`` (and Blender's process never imports torch): jobs that need a
real Blender, like building the demo scene, run here, in a separate Python process with the
``bpy`` module, and hand their results over as files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import bpy

from . import preview, register, scene_io

DEMO_PROMPT = "A small robot crosses a sunlit plaza past a stone pillar."
DEMO_SHOTS = (
    # marker name, camera, first frame, prompt
    ("shot_010", "CamWide", 1, "Wide establishing shot, the camera slowly pushes in on the robot."),
    ("shot_020", "CamOrbit", 41, "The camera arcs around the robot as it walks."),
    ("shot_030", "CamClose", 81, "Close-up on the robot, the lens zooms in."),
)


def _keyframe(obj: bpy.types.ID, path: str, frame: int, value) -> None:
    setattr(obj, path, value)
    obj.keyframe_insert(data_path=path, frame=frame)


def _box_mesh(name: str, size: tuple[float, float, float]) -> bpy.types.Mesh:
    """A box of ``size`` (x, y, z metres) centred on its object's origin."""
    hx, hy, hz = (v / 2 for v in size)
    corners = [(x, y, z) for x in (-hx, hx) for y in (-hy, hy) for z in (-hz, hz)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(corners, [], faces)
    return mesh


def _camera(name: str, lens: float, location: tuple[float, float, float]) -> bpy.types.Object:
    data = bpy.data.cameras.new(name)
    data.lens = lens
    obj = bpy.data.objects.new(name, data)
    obj.location = location
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _track_to(obj: bpy.types.Object, target: bpy.types.Object) -> None:
    constraint = obj.constraints.new("TRACK_TO")
    constraint.target = target
    constraint.track_axis = "TRACK_NEGATIVE_Z"
    constraint.up_axis = "UP_Y"


def build_demo_scene() -> bpy.types.Scene:
    """A 120-frame, three-shot scene exercising keyframes, constraints, parents and a zoom."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start, scene.frame_end = 1, 120

    ground = bpy.data.meshes.new("Ground")
    ground.from_pydata([(-10, -10, 0), (10, -10, 0), (10, 10, 0), (-10, 10, 0)], [],
                       [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Ground", ground))

    subjects = bpy.data.collections.new(scene_io.SUBJECTS_COLLECTION)
    scene.collection.children.link(subjects)
    # Meshes, not empties, so that the layout previews (Workbench) show them.
    hero = bpy.data.objects.new("Robot", _box_mesh("Robot", (0.5, 0.4, 1.6)))
    subjects.objects.link(hero)
    _keyframe(hero, "location", 1, (-2.0, 0.0, 0.8))
    _keyframe(hero, "location", 120, (2.0, 0.5, 0.8))
    pillar = bpy.data.objects.new("Pillar", _box_mesh("Pillar", (0.6, 0.6, 3.0)))
    pillar.location = (3.0, 3.0, 1.5)
    subjects.objects.link(pillar)

    # Shot 1: a keyframed dolly that keeps the robot framed through a Track To constraint.
    wide = _camera("CamWide", 28.0, (0.0, -12.0, 3.0))
    _keyframe(wide, "location", 1, (0.0, -12.0, 3.0))
    _keyframe(wide, "location", 40, (0.0, -8.0, 2.2))
    _track_to(wide, hero)
    # Shot 2: an orbit through a rotating parent.
    pivot = bpy.data.objects.new("OrbitPivot", None)
    scene.collection.objects.link(pivot)
    _keyframe(pivot, "rotation_euler", 41, (0.0, 0.0, 0.0))
    _keyframe(pivot, "rotation_euler", 80, (0.0, 0.0, math.radians(90.0)))
    orbit = _camera("CamOrbit", 35.0, (0.0, -6.0, 1.6))
    orbit.parent = pivot
    _track_to(orbit, hero)
    # Shot 3: a locked-off camera that zooms (animated focal length).
    close = _camera("CamClose", 35.0, (1.5, -3.5, 1.2))
    _track_to(close, hero)
    _keyframe(close.data, "lens", 81, 35.0)
    _keyframe(close.data, "lens", 120, 85.0)

    cameras = {"CamWide": wide, "CamOrbit": orbit, "CamClose": close}
    settings = scene.shotbridge
    settings.global_prompt = DEMO_PROMPT
    for name, camera, frame, prompt in DEMO_SHOTS:
        marker = scene.timeline_markers.new(name, frame=frame)
        marker.camera = cameras[camera]
        settings.shots.add().name = name
        settings.shots[name].prompt = prompt
    scene.camera = wide
    return scene


def _demo(args: argparse.Namespace) -> None:
    register()
    scene = build_demo_scene()
    data = scene_io.export_sequence(scene)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data) + "\n")
    if args.blend:
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.blend).resolve()))
    print(f"demo scene: {len(data['shots'])} shots, {len(data['objects'])} subjects -> {out}")


def _plan_previews(args: argparse.Namespace) -> None:
    """Open the demo scene, import a plan into a scene of its own and playblast every shot."""
    register()
    bpy.ops.wm.open_mainfile(filepath=str(Path(args.blend).resolve()))
    source = bpy.context.scene
    # Planned shots get their own scene over the same set and subjects: the animator's blocking
    # (its cameras and markers) stays as it was, and the two sets of markers never mix.
    planned = bpy.data.scenes.new("Planned")
    for collection in source.collection.children:
        planned.collection.children.link(collection)
    for obj in source.collection.objects:
        if obj.type != "CAMERA":
            planned.collection.objects.link(obj)
    for name in ("resolution_x", "resolution_y", "fps", "fps_base"):
        setattr(planned.render, name, getattr(source.render, name))
    plan = json.loads(Path(args.plan).read_text())
    report = scene_io.import_sequence(planned, plan)
    print(f"plan imported into scene {planned.name!r}: {report.summary()}")
    folder = Path(args.previews)
    for shot in scene_io.read_shots(planned):
        path = preview.layout_preview(planned, shot, folder)
        print(f"layout preview {shot.name} [{shot.camera.name}] frames {shot.frame_start}-"
              f"{shot.frame_end} -> {path}")
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.save).resolve()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blender_addon.headless")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="build the demo scene and export its ShotSequence")
    demo.add_argument("--out", required=True, help="ShotSequence JSON to write")
    demo.add_argument("--blend", help="also save the scene as this .blend file")
    demo.set_defaults(func=_demo)
    previews = commands.add_parser("plan-previews", help="import a plan into the demo scene and "
                                                         "render a layout preview per shot")
    previews.add_argument("--blend", required=True, help="the demo scene (.blend)")
    previews.add_argument("--plan", required=True, help="the planned ShotSequence JSON")
    previews.add_argument("--previews", required=True, help="folder for the MP4 previews")
    previews.add_argument("--save", required=True, help=".blend to save the result as")
    previews.set_defaults(func=_plan_previews)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except scene_io.SceneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
