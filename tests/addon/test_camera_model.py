"""blender_addon.camera_model against the real Blender (the ``bpy`` module from PyPI).

Three independent references: ``bpy_extras.object_utils.world_to_camera_view`` (the camera's
view frame), ``Object.calc_matrix_camera`` (the render view plane,
``BKE_camera_params_compute_viewplane``) and a tiny Cycles render whose pixels hold the world
position they see.

``world_to_camera_view`` measures the frame at the resolution *before* the percentage, while a
render uses the rounded ``res * percentage // 100`` size, so it is only compared where the
percentage divides the resolution; the other two references use any percentage.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from hypothesis import given, settings
from hypothesis import strategies as st
from mathutils import Vector
from scipy.linalg import polar
from scipy.spatial.transform import Rotation

from blender_addon.camera_model import (
    BlenderCamera,
    blender_from_intrinsics,
    c2w_from_matrix_world,
    flip_camera_axes,
    intrinsics_from_blender,
    matrix_world_from_c2w,
    project_points,
    render_size,
    resolved_sensor_fit,
)

FITS = ("AUTO", "HORIZONTAL", "VERTICAL")
PIXEL_TOL = 0.05


@pytest.fixture(scope="module")
def scene() -> SimpleNamespace:
    """An empty scene with a free camera and a camera parented to an empty."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_scene = bpy.context.scene
    free = bpy.data.objects.new("free_cam", bpy.data.cameras.new("free_cam"))
    child = bpy.data.objects.new("child_cam", bpy.data.cameras.new("child_cam"))
    parent = bpy.data.objects.new("parent", None)
    for obj in (free, child, parent):
        blender_scene.collection.objects.link(obj)
    child.parent = parent
    blender_scene.camera = free
    bpy.context.view_layer.update()
    return SimpleNamespace(scene=blender_scene, free=free, child=child, parent=parent)


def random_camera(
    rng: np.random.Generator, fit: str, *, exact_size: bool = True, max_side: int = 2048
) -> BlenderCamera:
    """Random perspective camera; with exact_size the percentage divides the resolution."""
    percentage = int(rng.choice([int(rng.integers(10, 200)), 50, 150]))
    step = 100 // math.gcd(percentage, 100) if exact_size else 1

    def side() -> int:
        return step * int(rng.integers(max(1, 16 // step), max(2, max_side // step)))

    aspect_x, aspect_y = rng.uniform(1.0, 2.5, size=2)
    if rng.random() < 0.3:  # Blender's preferred form: one of the two is 1.
        aspect_x, aspect_y = (1.0, aspect_y) if rng.random() < 0.5 else (aspect_x, 1.0)
    return BlenderCamera(
        lens=float(rng.uniform(8.0, 300.0)),
        sensor_width=float(rng.uniform(8.0, 50.0)),
        sensor_height=float(rng.uniform(8.0, 50.0)),
        sensor_fit=fit,
        shift_x=float(rng.uniform(-0.5, 0.5)),
        shift_y=float(rng.uniform(-0.5, 0.5)),
        resolution_x=max(side(), 4 * step),
        resolution_y=max(side(), 4 * step),
        resolution_percentage=percentage,
        pixel_aspect_x=float(aspect_x),
        pixel_aspect_y=float(aspect_y),
    )


def apply_camera(blender_scene: bpy.types.Scene, obj: bpy.types.Object, cam: BlenderCamera) -> None:
    """Write a BlenderCamera into the camera data and the scene's render settings."""
    data, render = obj.data, blender_scene.render
    data.type = "PERSP"
    data.lens, data.sensor_fit = cam.lens, cam.sensor_fit
    data.sensor_width, data.sensor_height = cam.sensor_width, cam.sensor_height
    data.shift_x, data.shift_y = cam.shift_x, cam.shift_y
    render.resolution_x, render.resolution_y = cam.resolution_x, cam.resolution_y
    render.resolution_percentage = cam.resolution_percentage
    render.pixel_aspect_x, render.pixel_aspect_y = cam.pixel_aspect_x, cam.pixel_aspect_y


def camera_from_blender(blender_scene: bpy.types.Scene, obj: bpy.types.Object) -> BlenderCamera:
    """Read back what Blender stored (float32), as scene_io will."""
    data, render = obj.data, blender_scene.render
    return BlenderCamera(
        lens=data.lens,
        sensor_width=data.sensor_width,
        sensor_height=data.sensor_height,
        sensor_fit=data.sensor_fit,
        shift_x=data.shift_x,
        shift_y=data.shift_y,
        resolution_x=render.resolution_x,
        resolution_y=render.resolution_y,
        resolution_percentage=render.resolution_percentage,
        pixel_aspect_x=render.pixel_aspect_x,
        pixel_aspect_y=render.pixel_aspect_y,
    )


def random_pose(
    rng: np.random.Generator, scene: SimpleNamespace, parented: bool
) -> bpy.types.Object:
    """Pose the free camera, or the child camera and its rotated, uniformly scaled parent."""
    obj = scene.child if parented else scene.free
    obj.location = rng.uniform(-5.0, 5.0, size=3)
    obj.rotation_euler = rng.uniform(-math.pi, math.pi, size=3)
    obj.scale = rng.uniform(0.2, 3.0, size=3)
    if parented:
        scene.parent.location = rng.uniform(-3.0, 3.0, size=3)
        scene.parent.rotation_euler = rng.uniform(-math.pi, math.pi, size=3)
        scene.parent.scale = (float(rng.uniform(0.3, 3.0)),) * 3
    bpy.context.view_layer.update()
    return obj


def visible_points(
    rng: np.random.Generator, K: np.ndarray, c2w: np.ndarray, size: tuple[int, int], count: int
) -> np.ndarray:
    """(count, 3) float32-representable world points that land inside the image."""
    fx, fy, cx, cy = K
    u = rng.uniform(0.0, size[0], count)
    v = rng.uniform(0.0, size[1], count)
    depth = rng.uniform(1.0, 30.0, count)
    cam = np.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], axis=-1)
    world = cam @ c2w[:3, :3].T + c2w[:3, 3]
    return world.astype(np.float32).astype(np.float64)


def blender_pixels(
    blender_scene: bpy.types.Scene, obj: bpy.types.Object, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Blender's own projection in our pixels (y down) and its view-axis depth."""
    width, height = render_size(camera_from_blender(blender_scene, obj))
    ndc = np.array([world_to_camera_view(blender_scene, obj, Vector(p)) for p in points])
    uv = np.stack([ndc[:, 0] * width, (1.0 - ndc[:, 1]) * height], axis=-1)
    return uv, ndc[:, 2]


def evaluated_c2w(obj: bpy.types.Object) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return c2w_from_matrix_world(np.array(obj.evaluated_get(depsgraph).matrix_world))


def test_projection_matches_world_to_camera_view(scene: SimpleNamespace) -> None:
    rng = np.random.default_rng(20240611)
    errors, depth_errors = [], []
    for i in range(600):
        parented = bool(i % 2)
        apply_camera(
            scene.scene, scene.child if parented else scene.free, random_camera(rng, FITS[i % 3])
        )
        obj = random_pose(rng, scene, parented)
        stored = camera_from_blender(scene.scene, obj)
        K, c2w = intrinsics_from_blender(stored), evaluated_c2w(obj)
        points = visible_points(rng, K, c2w, render_size(stored), count=6)

        uv, depth = project_points(K, c2w, points)
        uv_blender, depth_blender = blender_pixels(scene.scene, obj, points)
        errors.append(np.abs(uv - uv_blender).max())
        depth_errors.append(np.abs(depth - depth_blender).max() / depth.max())
    print(f"max |uv - world_to_camera_view| = {max(errors):.2e} px over {len(errors)} cameras")
    assert max(errors) < PIXEL_TOL
    assert max(depth_errors) < 1e-5


def test_intrinsics_match_render_view_plane(scene: SimpleNamespace) -> None:
    """Any percentage (also rounding ones) against the render path's projection matrix."""
    rng = np.random.default_rng(7)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    errors = []
    for i in range(300):
        cam = random_camera(rng, FITS[i % 3], exact_size=False)
        apply_camera(scene.scene, scene.free, cam)
        bpy.context.view_layer.update()
        stored = camera_from_blender(scene.scene, scene.free)
        width, height = render_size(stored)
        K = intrinsics_from_blender(stored)
        winmat = np.array(
            scene.free.evaluated_get(depsgraph).calc_matrix_camera(
                depsgraph,
                x=width,
                y=height,
                scale_x=stored.pixel_aspect_x,
                scale_y=stored.pixel_aspect_y,
            )
        )
        points_cv = visible_points(rng, K, np.eye(4), (width, height), count=6)
        uv, _ = project_points(K, np.eye(4), points_cv)
        # OpenCV camera axes -> Blender camera axes, then clip space -> y-down pixels.
        points_gl = points_cv * [1.0, -1.0, -1.0]
        clip = np.c_[points_gl, np.ones(len(points_gl))] @ winmat.T
        ndc = clip[:, :2] / clip[:, 3:]
        uv_blender = np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], -1)
        errors.append(np.abs(uv - uv_blender).max())
    assert max(errors) < PIXEL_TOL


@pytest.fixture
def position_render(scene: SimpleNamespace, tmp_path):
    """Cycles set up so that each pixel stores the world position it sees (one centred sample)."""
    mesh = bpy.data.meshes.new("ground")
    extent = 1e3
    corners = [
        (-extent, -extent, 0),
        (extent, -extent, 0),
        (extent, extent, 0),
        (-extent, extent, 0),
    ]
    mesh.from_pydata(corners, [], [(0, 1, 2, 3)])
    ground = bpy.data.objects.new("ground", mesh)
    scene.scene.collection.objects.link(ground)
    material = bpy.data.materials.new("position")
    tree = material.node_tree
    tree.nodes.clear()
    geometry = tree.nodes.new("ShaderNodeNewGeometry")
    emission = tree.nodes.new("ShaderNodeEmission")
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(geometry.outputs["Position"], emission.inputs["Color"])
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    mesh.materials.append(material)

    blender_scene = scene.scene
    blender_scene.render.engine = "CYCLES"
    blender_scene.cycles.device = "CPU"
    blender_scene.cycles.samples = 1
    blender_scene.cycles.use_denoising = False
    blender_scene.cycles.max_bounces = 0
    blender_scene.cycles.filter_width = 0.01  # the one sample lies within 0.005 px of the centre
    blender_scene.view_settings.view_transform = "Raw"
    blender_scene.render.image_settings.file_format = "OPEN_EXR"
    blender_scene.render.image_settings.color_depth = "32"
    blender_scene.render.filepath = str(tmp_path / "position.exr")

    def render(obj: bpy.types.Object) -> np.ndarray:
        blender_scene.camera = obj
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(blender_scene.render.filepath)
        width, height = image.size
        pixels = np.array(image.pixels[:], dtype=np.float64).reshape(height, width, 4)
        bpy.data.images.remove(image)
        return pixels[::-1]  # Blender stores the bottom row first.

    yield render
    bpy.data.objects.remove(ground)
    blender_scene.camera = scene.free


def test_pixel_centres_match_cycles_render(scene: SimpleNamespace, position_render) -> None:
    """Pixel (i, j) sees what we project to (i + 0.5, j + 0.5), also for rounded render sizes."""
    rng = np.random.default_rng(3)
    for i in range(9):
        cam = random_camera(rng, FITS[i % 3], exact_size=False, max_side=64)
        cam = dataclasses.replace(cam, lens=cam.lens / 6.0 + 8.0)  # keep the ground in view
        obj = scene.child if i % 2 else scene.free
        apply_camera(scene.scene, obj, cam)
        # Look down at the ground from above, tilted by at most ~25 degrees, any heading.
        obj.location = (*rng.uniform(-5.0, 5.0, size=2), rng.uniform(5.0, 20.0))
        obj.rotation_euler = (*rng.uniform(-0.3, 0.3, size=2), rng.uniform(-math.pi, math.pi))
        obj.scale = rng.uniform(0.5, 2.0, size=3)
        scene.parent.location, scene.parent.rotation_euler = (0, 0, 0), (0, 0, rng.uniform(0, 6))
        scene.parent.scale = (float(rng.uniform(0.5, 1.5)),) * 3
        bpy.context.view_layer.update()

        pixels = position_render(obj)
        stored = camera_from_blender(scene.scene, obj)
        width, height = render_size(stored)
        assert pixels.shape[:2] == (height, width)
        hit = pixels[..., 3] > 0.5
        assert hit.mean() > 0.5
        uv, _ = project_points(intrinsics_from_blender(stored), evaluated_c2w(obj), pixels[hit, :3])
        rows, cols = np.nonzero(hit)
        centres = np.stack([cols + 0.5, rows + 0.5], axis=-1)
        assert np.abs(uv - centres).max() < 0.01


@settings(max_examples=300, deadline=None)
@given(
    fx=st.floats(50.0, 20000.0),
    fy_ratio=st.floats(0.3, 3.0),
    width=st.integers(4, 8192),
    height=st.integers(4, 8192),
    cx_frac=st.floats(-1.0, 2.0),
    cy_frac=st.floats(-1.0, 2.0),
)
def test_blender_from_intrinsics_inverts(fx, fy_ratio, width, height, cx_frac, cy_frac) -> None:
    K = np.array([fx, fx * fy_ratio, cx_frac * width, cy_frac * height])
    try:
        cam = blender_from_intrinsics(K, width, height)
    except ValueError as error:  # only cameras Blender could not hold are refused
        assert "Blender" in str(error)
        return
    assert render_size(cam) == (width, height)
    assert cam.resolution_percentage == 100
    assert cam.sensor_fit in ("HORIZONTAL", "VERTICAL")
    assert min(cam.pixel_aspect_x, cam.pixel_aspect_y) == 1.0
    assert cam.sensor_fit == resolved_sensor_fit(dataclasses.replace(cam, sensor_fit="AUTO"))
    np.testing.assert_allclose(intrinsics_from_blender(cam), K, rtol=1e-9, atol=1e-9 * fx)


def test_blender_from_intrinsics_through_blender(scene: SimpleNamespace) -> None:
    rng = np.random.default_rng(11)
    errors = []
    for i in range(150):
        width, height = (int(n) for n in rng.integers(64, 2048, size=2))
        fx = float(rng.uniform(0.4, 4.0)) * max(width, height)
        fy = fx * float(rng.uniform(0.5, 2.0)) if i % 3 else fx
        K = np.array([fx, fy, rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
        cam = blender_from_intrinsics(K, width, height, sensor_width=float(rng.uniform(10, 40)))
        apply_camera(scene.scene, scene.free, cam)
        obj = random_pose(rng, scene, parented=False)
        c2w = evaluated_c2w(obj)
        points = visible_points(rng, K, c2w, (width, height), count=5)
        uv, _ = project_points(K, c2w, points)
        uv_blender, _ = blender_pixels(scene.scene, obj, points)
        errors.append(np.abs(uv - uv_blender).max())
        np.testing.assert_allclose(
            intrinsics_from_blender(camera_from_blender(scene.scene, obj)), K, rtol=1e-5
        )
    assert max(errors) < PIXEL_TOL


def test_auto_fit_follows_aspect_corrected_size() -> None:
    base = BlenderCamera(lens=50.0, sensor_width=36.0, sensor_height=24.0, sensor_fit="AUTO")
    square = dataclasses.replace(base, resolution_x=1000, resolution_y=1000)
    assert resolved_sensor_fit(square) == "HORIZONTAL"  # ties go horizontal
    portrait = dataclasses.replace(base, resolution_x=1000, resolution_y=1100)
    assert resolved_sensor_fit(portrait) == "VERTICAL"
    # Wide pixels make the same size landscape; AUTO still measures with sensor_width.
    wide = dataclasses.replace(portrait, pixel_aspect_x=1.2)
    assert resolved_sensor_fit(wide) == "HORIZONTAL"
    np.testing.assert_allclose(intrinsics_from_blender(wide)[0], 50.0 / 36.0 * 1000)
    np.testing.assert_allclose(intrinsics_from_blender(portrait)[1], 50.0 / 36.0 * 1100)


def test_render_size_rounds_down() -> None:
    cam = BlenderCamera(
        lens=50.0,
        sensor_width=36.0,
        sensor_height=24.0,
        resolution_x=37,
        resolution_y=23,
        resolution_percentage=33,
    )
    assert render_size(cam) == (12, 7)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lens", 0.0),
        ("lens", -35.0),
        ("lens", math.nan),
        ("sensor_width", 0.0),
        ("sensor_height", -1.0),
        ("sensor_fit", "DIAGONAL"),
        ("shift_x", math.inf),
        ("resolution_x", 0),
        ("resolution_y", -1080),
        ("resolution_percentage", 0),
        ("pixel_aspect_x", 0.0),
        ("pixel_aspect_y", -1.0),
    ],
)
def test_bad_fields_are_rejected(field: str, value: object) -> None:
    good = {"lens": 50.0, "sensor_width": 36.0, "sensor_height": 24.0}
    with pytest.raises(ValueError, match=field):
        BlenderCamera(**{**good, field: value})


def test_blender_from_intrinsics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="K"):
        blender_from_intrinsics(np.array([100.0, -100.0, 50.0, 50.0]), 100, 100)
    with pytest.raises(ValueError, match="width"):
        blender_from_intrinsics(np.array([100.0, 100.0, 50.0, 50.0]), 0, 100)
    with pytest.raises(ValueError, match="lens"):
        blender_from_intrinsics(np.array([1.0, 1.0, 50.0, 50.0]), 100, 100)


def test_identity_camera_looks_down_world_minus_z(scene: SimpleNamespace) -> None:
    c2w = c2w_from_matrix_world(np.eye(4))
    np.testing.assert_array_equal(c2w[:3, :3], np.diag([1.0, -1.0, -1.0]))  # +z_cv = -Z world
    cam = BlenderCamera(lens=50.0, sensor_width=36.0, sensor_height=24.0)
    apply_camera(scene.scene, scene.free, cam)
    scene.free.location, scene.free.rotation_euler, scene.free.scale = (
        (0, 0, 0),
        (0, 0, 0),
        (1, 1, 1),
    )
    bpy.context.view_layer.update()
    np.testing.assert_allclose(evaluated_c2w(scene.free), c2w, atol=1e-7)
    point = np.array([[0.0, 0.0, -5.0]])
    uv, depth = project_points(intrinsics_from_blender(cam), c2w, point)
    np.testing.assert_allclose(uv, [[960.0, 540.0]])
    np.testing.assert_allclose(depth, [5.0])
    np.testing.assert_allclose(blender_pixels(scene.scene, scene.free, point)[0], uv, atol=1e-4)


def test_scale_and_shear_are_removed() -> None:
    rng = np.random.default_rng(5)
    rotations = Rotation.from_rotvec(rng.normal(size=(8, 3))).as_matrix()
    matrices = np.tile(np.eye(4), (8, 1, 1))
    shear = np.triu(rng.uniform(-0.3, 0.3, size=(8, 3, 3)), k=1)
    matrices[:, :3, :3] = rotations @ (np.eye(3) * rng.uniform(0.2, 3.0, size=(8, 1, 3)) + shear)
    matrices[:, :3, 3] = rng.uniform(-5, 5, size=(8, 3))
    c2w = c2w_from_matrix_world(matrices)
    assert c2w.shape == (8, 4, 4)
    for matrix, pose in zip(matrices, c2w, strict=True):
        np.testing.assert_allclose(c2w_from_matrix_world(matrix), pose)
        nearest, _ = polar(matrix[:3, :3])
        np.testing.assert_allclose(pose[:3, :3], nearest @ np.diag([1.0, -1.0, -1.0]), atol=1e-12)
        np.testing.assert_allclose(pose[:3, 3], matrix[:3, 3])
    np.testing.assert_allclose(np.linalg.det(c2w[:, :3, :3]), 1.0)
    # Without shear the pose is the column-normalised matrix, and the inverse gets it back.
    matrices[:, :3, :3] = rotations * rng.uniform(0.2, 3.0, size=(8, 1, 3))
    unscaled = matrices.copy()
    unscaled[:, :3, :3] /= np.linalg.norm(matrices[:, :3, :3], axis=1, keepdims=True)
    np.testing.assert_allclose(matrix_world_from_c2w(c2w_from_matrix_world(matrices)), unscaled)
    np.testing.assert_allclose(flip_camera_axes(flip_camera_axes(matrices)), matrices)


def test_mirrored_or_degenerate_matrix_world_is_rejected() -> None:
    with pytest.raises(ValueError, match="matrix_world"):
        c2w_from_matrix_world(np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="matrix_world"):
        c2w_from_matrix_world(np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="matrix_world"):
        c2w_from_matrix_world(np.eye(3))
