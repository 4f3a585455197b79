"""Export from the real Blender: markers -> shots, evaluated camera poses, subjects, bad scenes."""

from __future__ import annotations

import json
import math

import bpy
import jsonschema
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from backend import shots as shots_io
from backend.camera.formats import realestate10k
from blender_addon import scene_io

FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


LOOK_AHEAD = (math.radians(80), 0.0, 0.0)


def add_camera(scene, name, location=(0.0, -8.0, 1.5), rotation=LOOK_AHEAD, lens=35.0):
    data = bpy.data.cameras.new(name)
    data.lens = lens
    obj = bpy.data.objects.new(name, data)
    obj.location = location
    obj.rotation_euler = rotation
    scene.collection.objects.link(obj)
    return obj


def add_empty(scene, name, location=(0.0, 0.0, 1.0), collection=None):
    obj = bpy.data.objects.new(name, None)
    obj.location = location
    (collection or scene.collection).objects.link(obj)
    return obj


def bind(scene, name, frame, camera):
    marker = scene.timeline_markers.new(name, frame=frame)
    marker.camera = camera
    return marker


def blender_pixel(scene, camera, point):
    """Blender's own projection of a world point, in ShotBridge pixels (y down)."""
    ndc = world_to_camera_view(scene, camera, Vector(point))
    width = scene.render.resolution_x * scene.render.resolution_percentage // 100
    height = scene.render.resolution_y * scene.render.resolution_percentage // 100
    return np.array([ndc.x * width, (1.0 - ndc.y) * height]), ndc.z


def test_markers_bound_to_cameras_define_the_shots(empty_scene):
    scene = empty_scene
    cam_a, cam_b = add_camera(scene, "CamA"), add_camera(scene, "CamB", location=(3, -8, 2))
    bind(scene, "sh_030", 35, cam_a)
    bind(scene, "sh_010", 1, cam_a)
    bind(scene, "sh_020", 20, cam_b)
    scene.timeline_markers.new("just a note", frame=10)
    shots = scene_io.read_shots(scene)
    assert [(s.name, s.camera.name, s.frame_start, s.frame_end) for s in shots] == [
        ("sh_010", "CamA", 1, 19), ("sh_020", "CamB", 20, 34), ("sh_030", "CamA", 35, 48)]


def test_without_markers_the_scene_camera_films_the_scene_range(empty_scene):
    scene = empty_scene
    scene.camera = add_camera(scene, "Main")
    scene.frame_start, scene.frame_end = 5, 12
    data = scene_io.export_sequence(scene)
    assert [(s["name"], s["camera"], s["frame_start"], s["frame_end"]) for s in data["shots"]] == [
        ("Main", "Main", 5, 12)]
    assert len(data["shots"][0]["c2w"]) == 8


def test_prompts_come_from_the_shot_list(empty_scene):
    scene = empty_scene
    cam = add_camera(scene, "Cam")
    bind(scene, "opening", 1, cam)
    bind(scene, "reveal", 30, cam)
    scene.shotbridge.global_prompt = "A lighthouse at dusk."
    item = scene.shotbridge.shots.add()
    item.name, item.prompt = "reveal", "The camera cranes up to reveal the sea."
    data = scene_io.export_sequence(scene)
    assert data["prompt"] == "A lighthouse at dusk."
    assert [s["prompt"] for s in data["shots"]] == ["", "The camera cranes up to reveal the sea."]


def _animated_rigs(scene):
    """Cameras animated in every way the exporter must evaluate, each with a moving subject."""
    subjects = bpy.data.collections.new(scene_io.SUBJECTS_COLLECTION)
    scene.collection.children.link(subjects)
    target = add_empty(scene, "Target", collection=subjects)
    target.location = (-1.0, 0.0, 1.0)
    target.keyframe_insert("location", frame=1)
    target.location = (1.5, 1.0, 0.5)
    target.keyframe_insert("location", frame=48)
    add_empty(scene, "Post", location=(2.0, 3.0, 0.0), collection=subjects)
    add_empty(scene, "Behind", location=(0.0, -30.0, 1.5), collection=subjects)

    track = add_camera(scene, "Tracking", location=(4.0, -7.0, 2.0))
    constraint = track.constraints.new("TRACK_TO")
    constraint.target = target
    constraint.track_axis, constraint.up_axis = "TRACK_NEGATIVE_Z", "UP_Y"

    curve_data = bpy.data.curves.new("Rail", "CURVE")
    spline = curve_data.splines.new("POLY")
    spline.points.add(2)
    for point, co in zip(spline.points, [(-4, -9, 1), (0, -7, 2), (4, -9, 1)], strict=True):
        point.co = (*co, 1.0)
    curve_data.use_path = True
    curve_data.path_duration = 48
    rail = bpy.data.objects.new("Rail", curve_data)
    scene.collection.objects.link(rail)
    follow = add_camera(scene, "OnRail", location=(0, 0, 0))
    path = follow.constraints.new("FOLLOW_PATH")
    path.target = rail
    path.use_curve_follow = False
    rail.data.eval_time = 0.0
    rail.data.keyframe_insert("eval_time", frame=1)
    rail.data.eval_time = 48.0
    rail.data.keyframe_insert("eval_time", frame=48)

    boom = add_empty(scene, "Boom", location=(0, 0, 0))
    boom.rotation_euler = (0, 0, 0)
    boom.keyframe_insert("rotation_euler", frame=1)
    boom.rotation_euler = (0, 0, math.radians(60))
    boom.keyframe_insert("rotation_euler", frame=48)
    boom.scale = (1.5, 1.5, 1.5)
    child = add_camera(scene, "ChildOf", location=(0, -6, 1.5))
    child_of = child.constraints.new("CHILD_OF")
    child_of.target = boom
    child_of.set_inverse_pending = False
    child_of.inverse_matrix.identity()

    parented = add_camera(scene, "Parented", location=(0, -5, 1.0))
    parented.parent = boom

    driven = add_camera(scene, "Driven", location=(0, -9, 1.5))
    fcurve = driven.driver_add("location", 0)
    fcurve.driver.type = "SCRIPTED"
    fcurve.driver.expression = "frame * 0.05"
    driven.data.lens = 28.0
    driven.data.shift_x = 0.1
    return [track, follow, child, parented, driven]


def test_evaluated_camera_poses_match_blender_projection(empty_scene):
    scene = empty_scene
    cameras = _animated_rigs(scene)
    for i, cam in enumerate(cameras):
        bind(scene, f"shot_{i}", 1 + 9 * i, cam)
    data = scene_io.export_sequence(scene)
    subjects = {o["name"]: np.array(o["positions"]) for o in data["objects"]}
    flags = [v for shot in data["shots"] for track in shot["subjects"] for v in track["visible"]]
    assert any(flags) and not all(flags)
    for shot, cam in zip(data["shots"], cameras, strict=True):
        c2w, K = np.array(shot["c2w"]), np.array(shot["K"])
        for i, frame in enumerate(range(shot["frame_start"], shot["frame_end"] + 1)):
            scene.frame_set(frame)
            # The exported pose is the evaluated world matrix (unit scale), OpenCV axes.
            world = np.array(cam.matrix_world)
            world[:3, :3] /= np.linalg.norm(world[:3, :3], axis=0)
            np.testing.assert_allclose(c2w[i], world @ FLIP, atol=1e-5, err_msg=cam.name)
            for track in shot["subjects"]:
                point = subjects[track["name"]][frame - scene.frame_start]
                expected, depth = blender_pixel(scene, cam, point)
                assert track["visible"][i] == bool(
                    depth > 0 and 0 <= expected[0] <= 640 and 0 <= expected[1] <= 360)
                if depth > 0:
                    np.testing.assert_allclose(track["uv"][i], expected, atol=0.05,
                                               err_msg=f"{cam.name} {track['name']} f{frame}")
        # And K itself projects the camera's view exactly like Blender does.
        w2c = np.linalg.inv(c2w[0])
        point = c2w[0][:3, 3] + c2w[0][:3, :3] @ np.array([0.3, -0.2, 4.0])
        scene.frame_set(shot["frame_start"])
        expected, _ = blender_pixel(scene, cam, point)
        local = w2c[:3, :3] @ point + w2c[:3, 3]
        uv = K[0, :2] * local[:2] / local[2] + K[0, 2:]
        np.testing.assert_allclose(uv, expected, atol=0.05)


def test_selected_objects_are_subjects_when_the_collection_is_empty(empty_scene):
    scene = empty_scene
    scene.camera = add_camera(scene, "Cam")
    chosen, ignored = add_empty(scene, "Chosen"), add_empty(scene, "Ignored")
    chosen.select_set(True)
    ignored.select_set(False)
    scene.camera.select_set(True)
    assert [o["name"] for o in scene_io.export_sequence(scene)["objects"]] == ["Chosen"]
    # Once the collection holds objects, it alone decides.
    assert bpy.ops.shotbridge.add_subjects.poll()
    scene_io.add_subjects(scene, [ignored, scene.camera])
    assert [o["name"] for o in scene_io.export_sequence(scene)["objects"]] == ["Ignored"]
    assert ignored.name in scene.collection.objects  # linking moves nothing of the user's


def test_scene_units_scale_positions_to_metres(empty_scene):
    scene = empty_scene
    scene.unit_settings.scale_length = 0.01  # one Blender unit is a centimetre
    scene.camera = add_camera(scene, "Cam", location=(0.0, -800.0, 150.0))
    data = scene_io.export_sequence(scene)
    np.testing.assert_allclose(np.array(data["shots"][0]["c2w"])[0, :3, 3], [0.0, -8.0, 1.5])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ("no_camera", "no camera"),
        ("marker_on_empty", "not a camera"),
        ("zero_length", "zero length"),
        ("orthographic", "orthographic"),
        ("panoramic", "panoramic"),
    ],
)
def test_bad_scenes_are_reported_not_raised(empty_scene, tmp_path, build, message):
    scene = empty_scene
    if build == "marker_on_empty":
        bind(scene, "shot", 1, add_empty(scene, "Stand-in"))
    elif build == "zero_length":
        cam = add_camera(scene, "Cam")
        bind(scene, "first", 10, cam)
        bind(scene, "second", 10, cam)
    elif build in ("orthographic", "panoramic"):
        cam = add_camera(scene, "Cam")
        cam.data.type = "ORTHO" if build == "orthographic" else "PANO"
        scene.camera = cam
    with pytest.raises(scene_io.SceneError, match=message):
        scene_io.export_sequence(scene)
    target = tmp_path / "shots.json"
    # In background mode an operator's error report surfaces as RuntimeError with its text.
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.shotbridge.export_shots(filepath=str(target))
    assert not target.exists()


def test_export_operator_writes_valid_shot_sequences_and_pose_files(empty_scene, tmp_path):
    scene = empty_scene
    cameras = _animated_rigs(scene)
    bind(scene, "wide", 1, cameras[0])
    bind(scene, "rail", 25, cameras[1])
    path = tmp_path / "out" / "scene.shots.json"
    assert bpy.ops.shotbridge.export_shots(filepath=str(path)) == {"FINISHED"}
    data = json.loads(path.read_text())
    jsonschema.validate(data, json.loads(shots_io.SCHEMA_PATH.read_text()))
    sequence = shots_io.load(path)
    assert [s.name for s in sequence.shots] == ["wide", "rail"]
    assert {o.name for o in sequence.objects} == {"Target", "Post", "Behind"}
    folder = tmp_path / "poses"
    assert bpy.ops.shotbridge.export_shots(filepath=str(folder), format="REALESTATE10K") == {
        "FINISHED"}
    for shot in sequence.shots:
        poses = realestate10k.read(folder / f"{shot.name}.txt")
        back = realestate10k.to_shot(poses, 640, 360, name=shot.name)
        np.testing.assert_allclose(back.c2w, shot.c2w, atol=1e-9)
        np.testing.assert_allclose(back.K, shot.K, rtol=1e-12)


def test_scene_points_lie_on_the_visible_static_meshes(empty_scene):
    scene = empty_scene
    scene.camera = add_camera(scene, "Cam")
    floor = bpy.data.meshes.new("Floor")
    floor.from_pydata([(-5, -5, 0), (5, -5, 0), (5, 5, 0), (-5, 5, 0)], [], [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Floor", floor))
    hidden = bpy.data.objects.new("Hidden", floor)
    hidden.location = (0, 0, 7)
    hidden.hide_render = True
    scene.collection.objects.link(hidden)
    subjects = bpy.data.collections.new(scene_io.SUBJECTS_COLLECTION)
    scene.collection.children.link(subjects)
    actor = bpy.data.objects.new("Actor", floor)
    actor.location = (0, 0, 3)
    subjects.objects.link(actor)
    data = scene_io.export_sequence(scene)
    points = np.array(data["scene_points"])
    assert points.shape == (512, 3)
    # Only the floor: the subject (z = 3) and the hidden mesh (z = 7) are left out.
    np.testing.assert_allclose(points[:, 2], 0.0, atol=1e-9)
    assert np.all(np.abs(points[:, :2]) <= 5.0)
    # Area-weighted and spread over the whole floor, the same every time.
    assert points[:, 0].std() > 2.0 and points[:, 1].std() > 2.0
    np.testing.assert_array_equal(points, np.array(scene_io.export_sequence(scene)["scene_points"]))
    assert shots_io.ShotSequence.from_dict(data).scene_points.shape == (512, 3)

