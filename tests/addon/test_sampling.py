"""scene_io.sampling against the real Blender: the fcurve path must give frame stepping's matrices.

The reference is always the naive loop: ``scene.frame_set(f)`` then ``matrix_world`` (and the
camera data's lens). Blender composes matrices in float32, the fcurve path in float64 from the
same float32 channel values, hence the 1e-5 tolerance; fcurve values themselves are compared
bit for bit with ``FCurve.evaluate``. The bpy-free evaluation and composition underneath
(``blender_addon.fcurve_math``) is also tested on its own, in ``test_fcurve_math.py``.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from bpy_extras import anim_utils

from blender_addon import camera_model, scene_io
from blender_addon.scene_io import sampling

ATOL = 1e-5
EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def channelbag(owner: bpy.types.ID):
    return anim_utils.animdata_get_channelbag_for_assigned_slot(owner.animation_data)


def fcurve(owner: bpy.types.ID, path: str, index: int = 0) -> bpy.types.FCurve:
    return channelbag(owner).fcurves.find(path, index=index)


def key(owner: bpy.types.ID, path: str, frame: float, value) -> None:
    setattr(owner, path, value)
    owner.keyframe_insert(path, frame=frame)


def add_object(scene, name, data=None, parent=None):
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.parent = parent
    return obj


def add_camera(scene, name, parent=None):
    return add_object(scene, name, bpy.data.cameras.new(name), parent)


def stepped(scene, objects, frames):
    """The naive loop: matrices (and camera lens data) of ``objects`` at each frame."""
    matrices = {obj.name: [] for obj in objects}
    lens = {obj.name: [] for obj in objects if obj.type == "CAMERA"}
    for frame in frames:
        scene.frame_set(frame)
        for obj in objects:
            matrices[obj.name].append(np.array(obj.matrix_world, np.float64))
            if obj.type == "CAMERA":
                lens[obj.name].append([getattr(obj.data, name) for name in sampling.LENS_CHANNELS])
    return {name: np.array(m) for name, m in matrices.items()}, {
        name: np.array(v) for name, v in lens.items()}


def sample(scene, cameras=(), subjects=(), frames=range(1, 49)):
    return sampling.sample_timeline(scene, list(cameras), list(subjects),
                                    {cam.name: frames for cam in cameras},
                                    subject_frames=frames)


def assert_matches_stepping(scene, cameras=(), subjects=(), frames=range(1, 49), fast=None):
    """sample_timeline equals the naive loop; ``fast``: whether no frame may be stepped."""
    result = sample(scene, cameras, subjects, frames)
    if fast is not None:
        assert (result.stepped_frames == ()) == fast
        assert all(reason is None for reason in result.reasons.values()) == fast, result.reasons
    matrices, lens = stepped(scene, [*cameras, *subjects], frames)
    for obj in subjects:
        np.testing.assert_allclose(result.subjects[obj.name], matrices[obj.name], atol=ATOL,
                                   rtol=0, err_msg=obj.name)
    for cam in cameras:
        got = result.cameras[cam.name]
        np.testing.assert_array_equal(got.frames, list(frames))
        np.testing.assert_allclose(got.matrix_world, matrices[cam.name], atol=ATOL, rtol=0,
                                   err_msg=cam.name)
        ours = np.stack([getattr(got, name) for name in sampling.LENS_CHANNELS], -1)
        np.testing.assert_allclose(ours, lens[cam.name], rtol=1e-6, atol=0, err_msg=cam.name)
        assert got.sensor_fit == (cam.data.sensor_fit,) * len(frames)
    return result


def animate_transform(obj, rotation_path, rotations, frames=(10, 25, 40)):
    for i, frame in enumerate(frames):
        key(obj, "location", frame, (math.sin(i) * 3, i - 1.5, 0.5 * i * i))
        key(obj, rotation_path, frame, rotations[i])
        key(obj, "scale", frame, (1 + 0.3 * i, 1.0 - 0.2 * i, 0.7 + 0.5 * i))


@pytest.mark.parametrize("mode", [*EULER_ORDERS, "QUATERNION", "AXIS_ANGLE"])
def test_every_rotation_mode_matches_frame_stepping(empty_scene, mode):
    """Keys at 10, 25, 40 and frames 1..48: interpolation and extrapolation on both sides."""
    scene = empty_scene
    obj = add_object(scene, "Obj")
    obj.rotation_mode = mode
    if mode == "QUATERNION":  # unnormalised keys and a zero key: Blender normalises them
        path, rotations = "rotation_quaternion", [(2.0, 0.4, -0.6, 0.2), (0.0, 0.0, 0.0, 0.0),
                                                  (0.3, -1.5, 0.7, 2.0)]
    elif mode == "AXIS_ANGLE":  # an unnormalised axis and a zero axis (identity)
        path, rotations = "rotation_axis_angle", [(0.5, 0.0, 0.0, 2.0), (2.0, 0.0, 0.0, 0.0),
                                                  (-1.2, 1.0, 2.0, -0.5)]
    else:
        path, rotations = "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (-0.4, 2.9, 0.6)]
    animate_transform(obj, path, rotations)
    fcurve(obj, "location", 0).extrapolation = "LINEAR"
    fcurve(obj, path, 1).extrapolation = "LINEAR"
    assert sampling.fcurve_path_reason(obj) is None
    assert_matches_stepping(scene, subjects=[obj], fast=True)


def test_fcurves_evaluate_bit_for_bit_like_blender(empty_scene):
    """Random keys, handles (some overshooting), interpolations and extrapolations, at key
    times, within the 1e-4 key snap and between frames; easing and modifiers included."""
    rng = np.random.default_rng(7)
    obj = add_object(empty_scene, "Holder")
    obj.keyframe_insert("location", frame=1)  # an action and a slot for the curves below
    curves = []
    for c in range(48):
        curve = channelbag(obj).fcurves.new(f'["p{c}"]')
        frames = np.sort(rng.choice(np.arange(-20, 60), int(rng.integers(1, 7)), replace=False))
        for frame in frames + rng.choice([0.0, 0.5, 0.25], frames.size):
            point = curve.keyframe_points.insert(float(frame), float(rng.normal() * 3))
            point.interpolation = rng.choice(["BEZIER", "BEZIER", "LINEAR", "CONSTANT"]
                                             + (["SINE", "ELASTIC"] if c % 8 == 0 else []))
            point.handle_left_type = point.handle_right_type = rng.choice(
                ["FREE", "AUTO_CLAMPED", "AUTO", "VECTOR", "ALIGNED"])
        curve.update()
        for point in curve.keyframe_points:
            if point.handle_left_type == "FREE":  # long handles: BKE_fcurve_correct_bezpart
                point.handle_left = (point.co.x - rng.uniform(0, 30), point.co.y + rng.normal())
                point.handle_right = (point.co.x + rng.uniform(0, 30), point.co.y + rng.normal())
        curve.extrapolation = rng.choice(["CONSTANT", "LINEAR"])
        if c % 12 == 1:
            curve.modifiers.new("NOISE")
        curves.append(curve)
    whole = np.arange(-25, 65)
    times = np.concatenate([np.arange(-30, 70, 0.37), whole, whole + 5e-5, whole - 2e-4])
    times = times.astype(np.float32)
    ours = sampling.evaluate_fcurves(curves, times)
    blender = np.array([[c.evaluate(float(t)) for t in times] for c in curves], np.float32)
    np.testing.assert_array_equal(ours, blender)


@pytest.mark.parametrize(("start", "end", "frame"), [(712, 768, 761), (1857, 1969, 1955),
                                                     (778, 834, 827), (632, 688, 681)])
def test_ill_conditioned_bezier_roots_round_like_blender(empty_scene, start, end, frame):
    """Auto handles a third of the way: the x cubic is linear up to float32 noise and Blender's
    closed-form root is dominated by rounding. numpy's exp and log (SIMD builds) differ from the
    C library's in the last bit, which rounds these roots to the next float32."""
    obj = add_object(empty_scene, "Obj")
    key(obj, "location", start, (0.0, 0.0, 0.0))
    key(obj, "location", end, (100.0, -40.0, 7.0))
    curves = list(channelbag(obj).fcurves)
    times = np.array([frame, frame - 1, frame + 1], np.float32)
    blender = np.array([[c.evaluate(float(t)) for t in times] for c in curves], np.float32)
    np.testing.assert_array_equal(sampling.evaluate_fcurves(curves, times), blender)


def test_delta_transforms(empty_scene):
    scene = empty_scene
    euler = add_object(scene, "Euler")
    euler.rotation_mode = "ZXY"
    animate_transform(euler, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)])
    euler.delta_location = (1.0, -2.0, 0.5)
    euler.delta_scale = (1.5, 0.5, 2.0)
    key(euler, "delta_rotation_euler", 5, (0.2, 0.4, -0.3))
    key(euler, "delta_rotation_euler", 30, (-1.0, 0.1, 0.9))
    quat = add_object(scene, "Quat")
    quat.rotation_mode = "QUATERNION"
    animate_transform(quat, "rotation_quaternion", [(1, 0, 0, 0), (0.5, 0.5, -0.5, 0.5),
                                                    (0.2, -0.9, 0.1, 0.3)])
    key(quat, "delta_rotation_quaternion", 12, (2.0, 0.3, 0.0, -0.4))  # unnormalised
    key(quat, "delta_location", 30, (0.0, 3.0, -1.0))
    axis = add_object(scene, "AxisAngle")
    axis.rotation_mode = "AXIS_ANGLE"
    animate_transform(axis, "rotation_axis_angle", [(0.4, 0, 1, 1), (2, 1, 0, 0), (-1, 1, 1, 0)])
    axis.delta_rotation_euler = (0.5, 0.5, 0.5)  # not used by axis-angle objects
    key(axis, "delta_scale", 20, (2.0, 1.0, 0.5))
    assert_matches_stepping(scene, subjects=[euler, quat, axis], fast=True)


def test_channels_blender_skips_keep_their_value(empty_scene):
    """Muted curves and curves without keys leave the property alone; Blender 5.0 still applies
    the curves of a muted group."""
    obj = add_object(empty_scene, "Obj")
    animate_transform(obj, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)])
    fcurve(obj, "location", 1).mute = True
    group = channelbag(obj).groups.new("Muted")
    scale_x = fcurve(obj, "scale", 0)
    scale_x.group = group
    group.mute = True
    empty = fcurve(obj, "rotation_euler", 2)
    while len(empty.keyframe_points):
        empty.keyframe_points.remove(empty.keyframe_points[0])
    obj.location.y, obj.scale.x, obj.rotation_euler.z = 4.0, 2.5, 0.75
    result = assert_matches_stepping(empty_scene, subjects=[obj], fast=True)
    np.testing.assert_allclose(result.subjects["Obj"][:, 1, 3], 4.0)
    assert np.ptp(np.linalg.norm(result.subjects["Obj"][:, :3, 0], axis=-1)) > 0.5  # scale x


def test_three_level_parent_chain_and_an_animated_lens(empty_scene):
    scene = empty_scene
    root = add_object(scene, "Root")
    root.rotation_mode = "YXZ"
    animate_transform(root, "rotation_euler", [(0, 0, 0), (0.3, 1.0, -0.4), (0, 0, 2.0)])
    middle = add_object(scene, "Middle", parent=root)
    key(middle, "location", 1, (2.0, 0.0, 0.0))
    key(middle, "location", 48, (2.0, 5.0, 1.0))
    middle.rotation_mode = "QUATERNION"
    key(middle, "rotation_quaternion", 20, (0.9, 0.1, 0.3, -0.2))
    middle.matrix_parent_inverse = np.array(
        [[0.8, -0.6, 0.0, 1.0], [0.6, 0.8, 0.0, -2.0], [0.0, 0.0, 1.5, 0.5], [0, 0, 0, 1]]).T
    camera = add_camera(scene, "Cam", parent=middle)
    camera.matrix_parent_inverse = np.diag([2.0, 2.0, 2.0, 1.0])
    key(camera, "location", 1, (0.0, -6.0, 1.5))
    key(camera, "rotation_euler", 1, (1.2, 0.0, 0.3))
    key(camera, "rotation_euler", 48, (1.4, 0.2, -0.3))
    for frame, lens, shift in ((1, 24.0, 0.0), (20, 50.0, 0.1), (48, 85.0, -0.2)):
        key(camera.data, "lens", frame, lens)
        key(camera.data, "shift_x", frame, shift)
        key(camera.data, "shift_y", frame, -shift / 2)
    camera.data.sensor_fit = "VERTICAL"
    assert sampling.fcurve_path_reason(camera) is None
    result = assert_matches_stepping(scene, cameras=[camera], subjects=[middle], fast=True)
    assert np.ptp(result.cameras["Cam"].lens) > 50


def test_lens_keys_below_the_minimum_are_clamped_like_blender(empty_scene):
    camera = add_camera(empty_scene, "Cam")
    key(camera.data, "lens", 1, 0.2)  # Camera.lens has a hard minimum of 1 mm
    key(camera.data, "lens", 48, 30.0)
    result = assert_matches_stepping(empty_scene, cameras=[camera], fast=True)
    assert result.cameras["Cam"].lens[0] == 1.0


def test_time_remapping(empty_scene):
    """frame_map_old/new scale the evaluation time (fractional times between keys)."""
    scene = empty_scene
    scene.render.frame_map_old, scene.render.frame_map_new = 3, 7
    obj = add_object(scene, "Obj")
    animate_transform(obj, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)],
                      frames=(2, 9, 17))
    assert_matches_stepping(scene, subjects=[obj], fast=True)


def _track_to(scene, obj):
    constraint = obj.constraints.new("TRACK_TO")
    constraint.target = add_object(scene, "Target")
    return "constraint 'Track To'"


def _follow_path(scene, obj):
    curve = bpy.data.curves.new("Path", "CURVE")
    curve.splines.new("POLY").points.add(2)
    for point, co in zip(curve.splines[0].points, [(0, 0, 0, 1), (5, 0, 0, 1), (5, 5, 2, 1)],
                         strict=True):
        point.co = co
    constraint = obj.constraints.new("FOLLOW_PATH")
    constraint.target = add_object(scene, "Path", curve)
    constraint.offset = 10.0
    key(constraint, "offset", 1, 0.0)
    key(constraint, "offset", 48, -80.0)
    return "constraint 'Follow Path'"


def _child_of(scene, obj):
    target = add_object(scene, "Target")
    key(target, "location", 1, (0, 0, 0))
    key(target, "location", 48, (3, 4, 5))
    obj.constraints.new("CHILD_OF").target = target
    return "constraint 'Child Of'"


def _driver(scene, obj):
    driver = obj.driver_add("rotation_euler", 2).driver
    driver.expression = "frame / 20"
    return "driver on rotation_euler[2]"


def _bone_parent(scene, obj):
    armature = add_object(scene, "Rig", bpy.data.armatures.new("Rig"))
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    bone = armature.data.edit_bones.new("Bone")
    bone.head, bone.tail = (0, 0, 0), (0, 1, 0)
    bpy.ops.object.mode_set(mode="OBJECT")
    pose_bone = armature.pose.bones["Bone"]
    key(pose_bone, "location", 1, (0, 0, 0))
    key(pose_bone, "location", 48, (2, 0, 3))
    obj.parent, obj.parent_type, obj.parent_bone = armature, "BONE", "Bone"
    return "bone parent 'Rig'"


def _parent_with_constraint(scene, obj):
    obj.parent = add_object(scene, "Parent")
    _child_of(scene, obj.parent)
    return "parent 'Parent': constraint 'Child Of'"


def _lens_driver(scene, obj):
    obj.data.driver_add("lens").driver.expression = "20 + frame"
    return "driver on camera data lens"


def _nla(scene, obj):
    track = obj.animation_data.nla_tracks.new()
    track.strips.new("Moves", 10, obj.animation_data.action)
    obj.animation_data.action = None
    return "NLA tracks on the object"


def _rotation_mode(scene, obj):
    obj.rotation_mode = "QUATERNION"
    obj.keyframe_insert("rotation_mode", frame=20)
    obj.rotation_mode = "XYZ"
    obj.keyframe_insert("rotation_mode", frame=30)
    return "animated rotation_mode"


@pytest.mark.parametrize("setup", [_track_to, _follow_path, _child_of, _driver, _bone_parent,
                                   _parent_with_constraint, _lens_driver, _nla, _rotation_mode])
def test_what_the_fcurve_path_cannot_do_is_detected_and_stepped(empty_scene, setup):
    scene = empty_scene
    camera = add_camera(scene, "Cam")
    animate_transform(camera, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)])
    expected = setup(scene, camera)
    assert sampling.fcurve_path_reason(camera) == expected
    result = assert_matches_stepping(scene, cameras=[camera], fast=False)
    assert result.reasons["Cam"] == expected
    assert result.stepped_frames == tuple(range(1, 49))


def test_mixed_scene_steps_only_what_needs_it(empty_scene):
    scene = empty_scene
    fast = add_camera(scene, "Fast")
    animate_transform(fast, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)])
    tracked = add_camera(scene, "Tracked")
    key(tracked, "location", 1, (0, -8, 2))
    key(tracked, "location", 48, (4, -6, 2))
    subjects = [add_object(scene, f"Subject{i}") for i in range(4)]
    for i, obj in enumerate(subjects):
        animate_transform(obj, "rotation_euler", [(i, 0, 0), (0, i, 0), (0, 0, i)],
                          frames=(1 + i, 20, 40 - i))
    tracked.constraints.new("TRACK_TO").target = subjects[0]
    subjects[3].constraints.new("COPY_LOCATION").target = subjects[1]
    frames = {"Fast": range(1, 20), "Tracked": range(20, 31)}
    result = sampling.sample_timeline(scene, [fast, tracked], subjects, frames,
                                      subject_frames=range(1, 31))
    assert [name for name, reason in result.reasons.items() if reason] == ["Tracked", "Subject3"]
    assert result.stepped_frames == tuple(range(1, 31))  # Subject3 is needed at every frame
    matrices, lens = stepped(scene, [fast, tracked, *subjects], range(1, 31))
    for name, cam in result.cameras.items():
        rows = np.asarray(frames[name]) - 1
        np.testing.assert_allclose(cam.matrix_world, matrices[name][rows], atol=ATOL, rtol=0)
        np.testing.assert_allclose(cam.lens, lens[name][rows, 0])
    for obj in subjects:
        np.testing.assert_allclose(result.subjects[obj.name], matrices[obj.name], atol=ATOL,
                                   rtol=0)
    # Without the constrained subject, only the tracked camera's frames are stepped.
    result = sampling.sample_timeline(scene, [fast, tracked], subjects[:3], frames)
    assert result.stepped_frames == tuple(range(20, 31))
    np.testing.assert_array_equal(result.subject_frames, np.arange(1, 31))


def test_a_stepped_camera_can_parent_fcurve_objects(empty_scene):
    """The camera's lens is driven (stepped) but its transform still feeds its child."""
    scene = empty_scene
    camera = add_camera(scene, "Cam")
    animate_transform(camera, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)])
    _lens_driver(scene, camera)
    child = add_object(scene, "Child", parent=camera)
    key(child, "location", 1, (0, 0, -3))
    key(child, "location", 48, (1, 2, -5))
    result = sampling.sample_timeline(scene, [camera], [child], {"Cam": range(20, 31)},
                                      subject_frames=range(1, 49))
    assert result.reasons == {"Cam": "driver on camera data lens", "Child": None}
    assert result.stepped_frames == tuple(range(20, 31))
    matrices, lens = stepped(scene, [camera, child], range(1, 49))
    np.testing.assert_allclose(result.subjects["Child"], matrices["Child"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.cameras["Cam"].matrix_world, matrices["Cam"][19:30],
                               atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.cameras["Cam"].lens, lens["Cam"][19:30, 0])


@pytest.mark.parametrize("constrained", [False, True])
def test_the_current_frame_is_restored(empty_scene, constrained):
    scene = empty_scene
    camera = add_camera(scene, "Cam")
    key(camera, "location", 1, (0, 0, 0))
    key(camera, "location", 48, (0, 9, 0))
    if constrained:
        _child_of(scene, camera)
    scene.frame_set(17, subframe=0.25)
    before = np.array(camera.matrix_world)
    result = sample(scene, cameras=[camera])
    assert (scene.frame_current, scene.frame_subframe) == (17, 0.25)
    assert result.stepped_frames == (tuple(range(1, 49)) if constrained else ())
    np.testing.assert_array_equal(np.array(camera.matrix_world), before)


def test_objects_the_depsgraph_skips_are_stepped(empty_scene):
    """Disabled in viewports, an object is not evaluated: stepping reads its stale matrix."""
    obj = add_object(empty_scene, "Hidden")
    animate_transform(obj, "rotation_euler", [(0.3, -0.5, 1.0), (1.4, 0.2, -2.5), (0, 2, 0)])
    obj.hide_viewport = True
    result = assert_matches_stepping(empty_scene, subjects=[obj], fast=False)
    assert result.reasons["Hidden"].startswith("not evaluated")


def test_export_matches_frame_stepping(empty_scene):
    """export_sequence through the sampler: one fcurve camera, one tracking camera, subjects."""
    scene = empty_scene
    subjects = bpy.data.collections.new(scene_io.SUBJECTS_COLLECTION)
    scene.collection.children.link(subjects)
    robot = bpy.data.objects.new("Robot", None)
    subjects.objects.link(robot)
    animate_transform(robot, "rotation_euler", [(0, 0, 0), (0, 0, 1), (0, 0, 2)])
    dolly = add_camera(scene, "Dolly")
    key(dolly, "location", 1, (0, -10, 2))
    key(dolly, "location", 24, (1, -6, 2))
    key(dolly, "rotation_euler", 1, (math.radians(80), 0, 0))
    key(dolly.data, "lens", 1, 30.0)
    key(dolly.data, "lens", 24, 60.0)
    tracking = add_camera(scene, "Tracking")
    tracking.location = (5, -5, 3)
    tracking.constraints.new("TRACK_TO").target = robot
    for name, frame, camera in (("sh_010", 1, dolly), ("sh_020", 25, tracking)):
        scene.timeline_markers.new(name, frame=frame).camera = camera
    data = scene_io.export_sequence(scene)
    matrices, _ = stepped(scene, [dolly, tracking, robot], range(1, 49))
    for shot, camera in zip(data["shots"], (dolly, tracking), strict=True):
        frames = range(shot["frame_start"], shot["frame_end"] + 1)
        expected = camera_model.c2w_from_matrix_world(matrices[camera.name][np.subtract(frames, 1)])
        np.testing.assert_allclose(shot["c2w"], expected, atol=ATOL)
        Ks = []
        for frame in frames:
            scene.frame_set(frame)
            Ks.append(camera_model.intrinsics_from_blender(scene_io.camera_settings(scene, camera)))
        np.testing.assert_allclose(shot["K"], Ks, rtol=1e-6)
    np.testing.assert_allclose(data["objects"][0]["positions"], matrices["Robot"][:, :3, 3],
                               atol=ATOL)
