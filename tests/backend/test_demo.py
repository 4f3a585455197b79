"""The demo end to end: headless Blender builds and exports the scene, the backend writes files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from backend import shots as shots_io
from backend.camera.formats import realestate10k
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, "-m", "backend", "demo", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_demo_writes_every_output(demo_run):
    out, stdout = demo_run
    for name in ("demo_scene.blend", "demo_scene.shots.json", "demo_scene.shots.npz"):
        assert (out / name).stat().st_size > 0, name
        assert str(out / name) in stdout
    assert sorted(p.name for p in (out / "realestate10k").iterdir()) == [
        "shot_010.txt", "shot_020.txt", "shot_030.txt"]


def test_demo_shots_follow_the_markers(demo_run):
    out, _ = demo_run
    sequence = shots_io.load(out / "demo_scene.shots.json")
    assert [(s.name, s.camera, s.frame_start, s.frame_end) for s in sequence.shots] == [
        ("shot_010", "CamWide", 1, 40), ("shot_020", "CamOrbit", 41, 80),
        ("shot_030", "CamClose", 81, 120)]
    assert sequence.resolution == (640, 360) and sequence.fps == 24.0
    assert all(shot.prompt for shot in sequence.shots) and sequence.prompt
    npz = shots_io.load(out / "demo_scene.shots.npz")
    for a, b in zip(sequence.shots, npz.shots, strict=True):
        assert np.array_equal(a.c2w, b.c2w) and np.array_equal(a.K, b.K)


def test_track_to_keeps_the_robot_at_the_image_centre(demo_run):
    """Every demo camera tracks the robot: it must project to (W/2, H/2) in every frame.

    This checks the whole chain at once: evaluated constraints and parents, the Blender -> OpenCV
    axis flip, the intrinsics and the subject export.
    """
    out, _ = demo_run
    sequence = shots_io.load(out / "demo_scene.shots.json")
    robot = next(o for o in sequence.objects if o.name == "Robot")
    for shot in sequence.shots:
        points = robot.positions[shot.frames - robot.frame_start]
        w2c = np.linalg.inv(shot.c2w)
        cam = np.einsum("nij,nj->ni", w2c[:, :3, :3], points) + w2c[:, :3, 3]
        assert np.all(cam[:, 2] > 0), shot.name
        u = shot.K[:, 0] * cam[:, 0] / cam[:, 2] + shot.K[:, 2]
        v = shot.K[:, 1] * cam[:, 1] / cam[:, 2] + shot.K[:, 3]
        np.testing.assert_allclose(u, 320.0, atol=1e-3, err_msg=shot.name)
        np.testing.assert_allclose(v, 180.0, atol=1e-3, err_msg=shot.name)
        track = next(s for s in shot.subjects if s.name == "Robot")
        np.testing.assert_allclose(track.uv, np.stack([u, v], axis=-1), atol=1e-6)
        assert track.visible.all()


def test_orbit_and_zoom_are_exported_as_animated(demo_run):
    out, _ = demo_run
    sequence = shots_io.load(out / "demo_scene.shots.json")
    orbit = sequence.shot("shot_020")
    centres = orbit.c2w[:, :3, 3]
    # Camera at (0, -6, 1.6) under a pivot at the origin turning 0 -> 90 degrees about Z.
    np.testing.assert_allclose(np.linalg.norm(centres[:, :2], axis=1), 6.0, atol=1e-5)
    np.testing.assert_allclose(centres[:, 2], 1.6, atol=1e-5)
    np.testing.assert_allclose(centres[0], [0.0, -6.0, 1.6], atol=1e-5)
    np.testing.assert_allclose(centres[-1], [6.0, 0.0, 1.6], atol=1e-5)
    zoom = sequence.shot("shot_030")
    # fx = lens / sensor_width * W with the default 36 mm sensor: 35 mm -> 85 mm.
    assert zoom.K[0, 0] == pytest.approx(35.0 / 36.0 * 640.0)
    assert zoom.K[-1, 0] == pytest.approx(85.0 / 36.0 * 640.0)
    assert np.all(np.diff(zoom.K[:, 0]) >= 0)
    np.testing.assert_allclose(zoom.c2w[:, :3, 3], zoom.c2w[:1, :3, 3].repeat(40, 0), atol=1e-9)


def test_pose_files_match_the_shots(demo_run):
    out, _ = demo_run
    sequence = shots_io.load(out / "demo_scene.shots.json")
    for shot in sequence.shots:
        data = realestate10k.read(out / "realestate10k" / f"{shot.name}.txt")
        np.testing.assert_allclose(data.w2c, np.linalg.inv(shot.c2w)[:, :3], atol=1e-12)
        np.testing.assert_allclose(data.intrinsics * [640, 360, 640, 360], shot.K, rtol=1e-12)
        assert data.timestamps[1] - data.timestamps[0] == round(1e6 / 24)


def test_demo_plans_imports_and_previews_three_shots(demo_run):
    out, stdout = demo_run
    plan = shots_io.load(out / "demo_plan.shots.json")
    assert len(plan.shots) == 3 and plan.metadata["planner"]["name"] == "grammar"
    assert plan.fps == 24.0 and plan.resolution == (640, 360)
    # Every planned camera sees the robot, which stands where the scene context put it.
    objects = shots_io.load(out / "demo_scene.shots.json").objects
    robot = next(obj for obj in objects if obj.name == "Robot")  # it walks: frames 1..120
    for shot in plan.shots:
        w2c = np.linalg.inv(shot.c2w)
        depth = np.einsum("nij,j->ni", w2c[:, :3, :3], robot.positions[0])[:, 2] + w2c[:, 2, 3]
        assert np.all(depth > 0), shot.name
    previews = sorted((out / "previews").glob("Planned_shot_0*_layout_*.mp4"))
    assert len(previews) == 3 and all(p.stat().st_size > 0 for p in previews)
    assert (out / "demo_planned.blend").stat().st_size > 0
    assert stdout.count("layout preview shot_0") == 3 and "plan imported" in stdout

