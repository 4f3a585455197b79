"""Importing planned shots into real Blender (the ``bpy`` module): scene_io.import_sequence.

Round trips go export -> import -> export through Blender's own F-curve evaluation and the
exporter, so they check the keys, handles, lens settings and markers together.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import bpy
import numpy as np
import pytest

import blender_addon
from blender_addon import keyframes, scene_io
from blender_addon.operators import SHOTBRIDGE_OT_import_shots

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
POSITION_TOL = 0.001 + 1e-5  # metres, + float32 slack
ANGLE_TOL_DEG = 0.05 + 1e-3
K_TOL = 1e-6  # relative


def fresh_scene() -> bpy.types.Scene:
    """An empty factory scene with the add-on registered (registration survives a reset)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if not hasattr(bpy.types.Scene, "shotbridge"):
        blender_addon.register()
    return bpy.context.scene


@pytest.fixture
def scene() -> bpy.types.Scene:
    return fresh_scene()


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """OpenCV camera-to-world (4, 4) at ``position`` looking at ``target``, world +Z up."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = math.cos(roll), math.sin(roll)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1] = c * right + s * down, c * down - s * right
    pose[:3, 2], pose[:3, 3] = forward, position
    return pose


def orbit_shot(n: int = 120, start: int = 1) -> dict:
    """A 120-frame orbit (its pan passes ±180°), a rising camera, a roll and an eased zoom."""
    t = np.linspace(0.0, 1.0, n)
    phi = np.radians(20.0 + 200.0 * t)
    positions = np.stack([6 * np.cos(phi), 6 * np.sin(phi), 1.6 + 0.5 * t], axis=-1)
    roll = np.radians(15.0) * np.sin(np.pi * t)
    target = np.array([0.0, 0.0, 1.0])
    c2w = np.stack([look_at(p, target, r) for p, r in zip(positions, roll, strict=True)])
    fx = 500.0 + 300.0 * (3 * t**2 - 2 * t**3)
    K = np.stack([fx, fx, np.full(n, 320.0), np.full(n, 180.0)], axis=-1)
    return {"name": "orbit", "camera": "CamOrbit", "prompt": "The camera circles the robot.",
            "frame_start": start, "frame_end": start + n - 1, "c2w": c2w.tolist(),
            "K": K.tolist()}


def dolly_shot(n: int = 40, start: int = 121) -> dict:
    """A straight dolly with a fixed, off-centre principal point."""
    positions = np.stack([np.linspace(0.0, 4.0, n), np.full(n, -8.0), np.full(n, 1.5)], axis=-1)
    c2w = np.stack([look_at(p, p + np.array([0.0, 1.0, 0.0])) for p in positions])
    K = np.tile([500.0, 500.0, 330.0, 170.0], (n, 1))
    return {"name": "dolly", "camera": "CamDolly", "prompt": "Track along the wall.",
            "frame_start": start, "frame_end": start + n - 1, "c2w": c2w.tolist(),
            "K": K.tolist()}


def sequence(*shots: dict) -> dict:
    return {"format": "shotbridge.shot_sequence", "version": 1, "fps": 24.0,
            "resolution": [640, 360], "prompt": "A robot in a plaza.", "shots": list(shots)}


def pose_errors(a: dict, b: dict) -> tuple[float, float, float]:
    """Max position error (m), rotation angle (degrees) and relative K error over all shots."""
    position = angle = k_error = 0.0
    assert [s["name"] for s in a["shots"]] == [s["name"] for s in b["shots"]]
    for shot_a, shot_b in zip(a["shots"], b["shots"], strict=True):
        assert (shot_a["frame_start"], shot_a["frame_end"]) == (shot_b["frame_start"],
                                                                shot_b["frame_end"])
        c2w_a, c2w_b = np.array(shot_a["c2w"]), np.array(shot_b["c2w"])
        position = max(position, np.linalg.norm(c2w_a[:, :3, 3] - c2w_b[:, :3, 3], axis=-1).max())
        relative = keyframes.quaternions_from_matrices(
            np.swapaxes(c2w_a[:, :3, :3], -1, -2) @ c2w_b[:, :3, :3])
        identity = np.tile([1.0, 0.0, 0.0, 0.0], (len(relative), 1))
        angle = max(angle, math.degrees(keyframes.quaternion_angles(identity, relative).max()))
        K_a, K_b = np.array(shot_a["K"]), np.array(shot_b["K"])
        k_error = max(k_error, (np.abs(K_a - K_b) / np.abs(K_a)).max())
    return position, angle, k_error


def channelbag(owner: bpy.types.ID):
    from bpy_extras import anim_utils

    return anim_utils.animdata_get_channelbag_for_assigned_slot(owner.animation_data)


def snapshot(scene: bpy.types.Scene) -> dict:
    """Everything an import could change, as plain data."""
    def keys(owner):
        bag = channelbag(owner) if owner is not None else None
        return sorted((fc.data_path, fc.array_index, tuple(tuple(p.co) for p in fc.keyframe_points))
                      for fc in (bag.fcurves if bag else []))

    bpy.context.view_layer.update()  # matrix_world as evaluated, whoever evaluated last
    render = scene.render
    return {
        "objects": {obj.name: (np.array(obj.matrix_world).round(9).tolist(), keys(obj),
                               keys(obj.data) if obj.type == "CAMERA" else None,
                               dict(obj.items()).keys() == {"shotbridge_plan"})
                    for obj in bpy.data.objects},
        "cameras": sorted(cam.name for cam in bpy.data.cameras),
        "actions": sorted(action.name for action in bpy.data.actions),
        "collections": sorted(c.name for c in bpy.data.collections),
        "markers": sorted((m.name, m.frame, m.camera.name if m.camera else None)
                          for m in scene.timeline_markers),
        "render": (render.resolution_x, render.resolution_y, render.resolution_percentage,
                   render.pixel_aspect_x, render.pixel_aspect_y, render.fps, render.fps_base),
        "range": (scene.frame_start, scene.frame_end),
        "scene_camera": scene.camera.name if scene.camera else None,
    }


def add_user_camera(scene: bpy.types.Scene) -> bpy.types.Object:
    """The user's own keyed camera with a bound marker, and an unbound marker."""
    obj = bpy.data.objects.new("UserCam", bpy.data.cameras.new("UserCam"))
    scene.collection.objects.link(obj)
    obj.location = (1.0, 2.0, 3.0)
    obj.keyframe_insert("location", frame=1)
    obj.location = (2.0, 2.0, 3.0)
    obj.keyframe_insert("location", frame=50)
    scene.timeline_markers.new("user_shot", frame=500).camera = obj
    scene.timeline_markers.new("note", frame=7)
    return obj


# ------------------------------------------------------------------------------------------------


def test_operator_imports_the_golden_file(scene) -> None:
    path = GOLDEN / "two_shots.json"
    assert bpy.ops.shotbridge.import_shots(filepath=str(path)) == {"FINISHED"}
    collection = bpy.data.collections[scene_io.PLAN_COLLECTION]
    assert collection.name in scene.collection.children
    assert sorted(obj.name for obj in collection.objects) == ["Plan shot_010", "Plan shot_020"]
    markers = sorted((m.name, m.frame, m.camera.name) for m in scene.timeline_markers)
    assert markers == [("shot_010", 1, "Plan shot_010"), ("shot_020", 6, "Plan shot_020")]
    assert (scene.render.resolution_x, scene.render.resolution_y) == (640, 360)
    assert scene.shotbridge.shots["shot_010"].prompt == "Slow push in on the robot."
    # shot_010's lens block reproduces K, so its sensor and fit are kept; shot_020 has none.
    assert bpy.data.objects["Plan shot_010"].data.sensor_fit == "AUTO"
    assert bpy.data.objects["Plan shot_010"].data.sensor_height == 24.0
    assert bpy.data.objects["Plan shot_020"].data.sensor_fit == "HORIZONTAL"

    golden = json.loads(path.read_text())
    position, angle, k_error = pose_errors(golden, scene_io.export_sequence(scene))
    assert position <= POSITION_TOL and angle <= ANGLE_TOL_DEG and k_error <= K_TOL


@pytest.mark.parametrize("rotation_mode", ["XYZ", "QUATERNION"])
def test_export_import_export_round_trip(rotation_mode: str) -> None:
    plan = sequence(orbit_shot(), dolly_shot())
    scene = fresh_scene()
    report = scene_io.import_sequence(scene, plan, rotation_mode=rotation_mode)
    first = scene_io.export_sequence(scene)
    assert pose_errors(plan, first)[0] <= POSITION_TOL

    scene = fresh_scene()
    report = scene_io.import_sequence(scene, first, rotation_mode=rotation_mode)
    second = scene_io.export_sequence(scene)
    position, angle, k_error = pose_errors(first, second)
    assert position <= POSITION_TOL, position
    assert angle <= ANGLE_TOL_DEG, angle
    assert k_error <= K_TOL, k_error
    assert [s["lens"]["sensor_fit"] for s in second["shots"]] == ["HORIZONTAL"] * 2
    # A handful of keys, not one per frame; the dolly is a straight line: 2 keys.
    assert report.samples == 160
    assert report.keys_kept["dolly"] == 2
    assert report.keys_kept["orbit"] <= 20
    assert "keys kept from 160 frames" in report.summary()


def test_euler_keys_do_not_flip_through_180_degrees(scene) -> None:
    scene_io.import_sequence(scene, sequence(orbit_shot()), rotation_mode="XYZ")
    obj = bpy.data.objects["Plan orbit"]
    assert obj.rotation_mode == "XYZ"
    bag = channelbag(obj)
    pan = bag.fcurves.find("rotation_euler", index=2)
    played = np.array([[bag.fcurves.find("rotation_euler", index=i).evaluate(f) for i in range(3)]
                       for f in range(1, 121)])
    # The pan passes ±180° (a plain decomposition would jump by 2π there) and never jumps.
    assert played[:, 2].min() < math.pi < played[:, 2].max()
    assert np.abs(np.diff(played, axis=0)).max() < math.radians(5.0)
    assert all(p.handle_left_type == p.handle_right_type == "ALIGNED"
               for p in pan.keyframe_points)


def test_blender_plays_back_the_checked_curves(scene) -> None:
    """Each F-curve, as Blender evaluates it, matches keyframes.evaluate_keys on its keys."""
    scene_io.import_sequence(scene, sequence(orbit_shot()))
    obj = bpy.data.objects["Plan orbit"]
    frames = np.arange(1, 121, dtype=np.float64)
    for owner in (obj, obj.data):
        for fc in channelbag(owner).fcurves:
            points = fc.keyframe_points
            keys = keyframes.ChannelKeys(
                co=np.array([tuple(p.co) for p in points]),
                handle_left=np.array([tuple(p.handle_left) for p in points]),
                handle_right=np.array([tuple(p.handle_right) for p in points]))
            played = np.array([fc.evaluate(f) for f in frames])
            expected = keyframes.evaluate_keys(keys, frames)
            assert np.allclose(played, expected, rtol=1e-6, atol=1e-6), fc.data_path
    lens = channelbag(obj.data).fcurves.find("lens")
    assert lens is not None and len(lens.keyframe_points) >= 2  # the zoom
    assert channelbag(obj.data).fcurves.find("shift_x") is None  # a centred principal point


def test_reimport_replaces_only_the_plan(scene) -> None:
    user = add_user_camera(scene)
    user_before = snapshot(scene)["objects"]["UserCam"]
    plan = sequence(orbit_shot(), dolly_shot())
    scene_io.import_sequence(scene, plan)
    first = snapshot(scene)
    report = scene_io.import_sequence(scene, plan)
    second = snapshot(scene)
    assert report.replaced == ["Plan dolly", "Plan orbit"]
    assert second == first  # same names, keys, markers: nothing left over, nothing duplicated
    assert len(bpy.data.objects) == 3 and len(bpy.data.cameras) == 3
    assert len(bpy.data.actions) == 3
    assert second["objects"]["UserCam"] == user_before
    assert ("user_shot", 500, "UserCam") in second["markers"]
    assert ("note", 7, None) in second["markers"]
    assert user.name == "UserCam" and scene_io.edited_plan_cameras(scene) == []


def test_edited_plan_camera_is_only_replaced_when_confirmed(scene, tmp_path) -> None:
    plan = sequence(orbit_shot(), dolly_shot())
    scene_io.import_sequence(scene, plan)
    obj = bpy.data.objects["Plan orbit"]
    fc = channelbag(obj).fcurves.find("location", index=2)
    fc.keyframe_points[0].co.y += 0.5  # the animator raises the first key
    fc.update()
    assert scene_io.edited_plan_cameras(scene) == ["Plan orbit"]

    before = snapshot(scene)
    with pytest.raises(scene_io.SceneError, match="Plan orbit"):
        scene_io.import_sequence(scene, plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    with pytest.raises(RuntimeError, match="Plan orbit"):  # the operator's error report
        bpy.ops.shotbridge.import_shots(filepath=str(path))
    assert snapshot(scene) == before

    assert bpy.ops.shotbridge.import_shots(filepath=str(path), replace_edited=True) == {
        "FINISHED"}
    assert scene_io.edited_plan_cameras(scene) == []
    fc = channelbag(bpy.data.objects["Plan orbit"]).fcurves.find("location", index=2)
    assert fc.keyframe_points[0].co.y == pytest.approx(orbit_shot()["c2w"][0][2][3], abs=1e-6)


def test_lens_block_that_disagrees_with_K_is_not_used(scene) -> None:
    data = json.loads((GOLDEN / "two_shots.json").read_text())
    data["shots"][0]["lens"]["lens"] = [30.0] * 5  # K says 28.125 mm on a 36 mm sensor
    scene_io.import_sequence(scene, data)
    assert bpy.data.objects["Plan shot_010"].data.lens == pytest.approx(28.125)
    assert pose_errors(data, scene_io.export_sequence(scene))[2] <= K_TOL


def test_tiny_focal_jitter_gives_no_lens_keys(scene) -> None:
    shot = dolly_shot()
    K = np.array(shot["K"])
    K[::2, :2] *= 1.0 + 1e-9  # ~3e-8 mm of lens: constant
    shot["K"] = K.tolist()
    scene_io.import_sequence(scene, sequence(shot))
    assert bpy.data.objects["Plan dolly"].data.animation_data is None


def test_saved_plan_stays_unedited_and_duplicates_are_the_users(scene, tmp_path) -> None:
    scene_io.import_sequence(scene, sequence(orbit_shot(), dolly_shot()))
    for frame in (1, 60, 140):
        scene.frame_set(frame)
    path = tmp_path / "plan.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    scene = bpy.context.scene
    assert scene_io.edited_plan_cameras(scene) == []
    original = bpy.data.objects["Plan orbit"]
    copy_ = original.copy()  # what Shift+D makes: same custom properties, another name
    copy_.data = original.data.copy()
    scene.collection.objects.link(copy_)
    report = scene_io.import_sequence(scene, sequence(dolly_shot()))
    assert report.replaced == ["Plan dolly", "Plan orbit"]
    assert sorted(obj.name for obj in bpy.data.objects) == ["Plan dolly", copy_.name]
    assert copy_.animation_data.action is not None  # its (shared) action survives


def _bad(mutate) -> dict:
    data = json.loads((GOLDEN / "two_shots.json").read_text())
    mutate(data)
    return data


BAD_FILES = {
    "version": (lambda d: d.update(version=2), "version"),
    "format": (lambda d: d.update(format="something"), "format"),
    "no shots": (lambda d: d.update(shots=[]), "shots"),
    "c2w length": (lambda d: d["shots"][1]["c2w"].pop(), r"shots\[1\] 'shot_020'\.c2w"),
    "K NaN": (lambda d: d["shots"][0]["K"][2].__setitem__(0, float("nan")),
              r"shots\[0\] 'shot_010'\.K\[2\]\[0\]"),
    "c2w inf": (lambda d: d["shots"][0]["c2w"][1][0].__setitem__(3, float("inf")),
                r"shots\[0\] 'shot_010'\.c2w\[1\]\[0\]\[3\]"),
    "not a rotation": (lambda d: d["shots"][0]["c2w"][0][0].__setitem__(0, 2.0),
                       r"shots\[0\] 'shot_010'\.c2w\[0\]"),
    "overlap": (lambda d: d["shots"][1].update(frame_start=5, frame_end=7),
                r"shots\[1\] 'shot_020'\.frame_start"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_and_changes_nothing(scene, tmp_path, case: str) -> None:
    add_user_camera(scene)
    scene_io.import_sequence(scene, sequence(dolly_shot()))
    before = snapshot(scene)
    mutate, field = BAD_FILES[case]
    data = _bad(mutate)
    with pytest.raises(scene_io.SceneError, match=field):
        scene_io.import_sequence(scene, copy.deepcopy(data))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    # A CANCELLED operator that reported an error raises RuntimeError in bpy.
    with pytest.raises(RuntimeError, match=field):
        bpy.ops.shotbridge.import_shots(filepath=str(path))
    assert snapshot(scene) == before


def test_render_settings_are_kept_when_they_already_match(scene) -> None:
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = 1280, 720, 50
    scene.frame_start, scene.frame_end = 1, 160
    report = scene_io.import_sequence(scene, sequence(orbit_shot(), dolly_shot()))
    assert report.resolution == (640, 360)
    assert not report.resolution_changed and not report.frame_range_changed
    assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (
        1280, 720, 50)
    assert "render size" not in report.summary()
    plan = sequence(orbit_shot(), dolly_shot())
    assert pose_errors(plan, scene_io.export_sequence(scene))[2] <= K_TOL


def test_scene_unit_scale_is_divided_out(scene) -> None:
    scene.unit_settings.scale_length = 0.01  # 1 Blender unit = 1 cm
    plan = sequence(dolly_shot())
    scene_io.import_sequence(scene, plan)
    scene.frame_set(121)
    assert bpy.data.objects["Plan dolly"].location.y == pytest.approx(-800.0, rel=1e-6)
    assert pose_errors(plan, scene_io.export_sequence(scene))[0] <= POSITION_TOL


def test_import_is_one_undo_step() -> None:
    """The operator is undoable as a whole; import_sequence itself runs no operators."""
    assert "UNDO" in SHOTBRIDGE_OT_import_shots.bl_options
    assert "REGISTER" in SHOTBRIDGE_OT_import_shots.bl_options
