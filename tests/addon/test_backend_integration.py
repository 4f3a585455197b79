"""The add-on against the real backend: ``python -m backend serve`` started the way the panel's
Start button starts it (``service.start_backend``), ``SHOTBRIDGE_HOME`` in a temporary
folder, the token read from the file the server writes there.

Skipped only where ``backend.server`` is missing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import bpy
import pytest

from blender_addon import preview, service
from blender_addon.client import BackendError, Client, Connection
from tests.addon.conftest import build_shot_scene, drain_until, free_port

pytestmark = pytest.mark.skipif(importlib.util.find_spec("backend.server") is None,
                                reason="backend.server is not there yet")

START_TIMEOUT = 120.0


# First in the module: it needs no backend started from Blender yet (one process at a time), and
# the module's backend fixture is set up for the next test.
def test_a_backend_that_cannot_start_says_why_in_the_panel(link, peer, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOTBRIDGE_HOME", str(tmp_path))
    # The port is taken (by the test's HTTP peer): uvicorn cannot bind and the process exits.
    process = link.start_backend(sys.executable, peer.port, tmp_path)
    try:
        drain_until(lambda: link.state.process is None, timeout=START_TIMEOUT)
    finally:
        link.stop_backend(wait=True)
    assert link.state.message_is_error
    assert link.state.message.startswith(f"the backend exited (code {process.returncode})")
    assert "address already in use" in (tmp_path / "backend.log").read_text().lower()


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """The real backend on a free port, started and stopped through ``service``."""
    home = tmp_path_factory.mktemp("shotbridge_home")
    with pytest.MonkeyPatch.context() as patch:
        # Blender's environment is the backend's and the client's: both find the token here.
        patch.setenv("SHOTBRIDGE_HOME", str(home))
        port = free_port()
        process = service.start_backend(sys.executable, port, home / "addon")
        assert process.args == [sys.executable, "-m", "backend", "serve", "--port", str(port)]
        conn = Connection(port=port, token="", timeout=30.0)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                Client(conn).health()
                break
            except BackendError as error:
                log = (home / "addon" / "backend.log").read_text(errors="replace")
                assert process.poll() is None, f"the backend exited: {log[-2000:]}"
                assert time.monotonic() < deadline, f"no answer in time ({error}): {log[-2000:]}"
                time.sleep(0.2)
        yield conn, home
        assert service.stop_backend(wait=True)
        assert process.poll() is not None
    assert not service.backend_process_running()


def test_token_file_is_in_shotbridge_home(backend):
    conn, home = backend
    token = (home / "token").read_text().strip()
    assert token and Client(conn).health()["status"] == "ok"
    if os.name == "posix":
        assert (home / "token").stat().st_mode & 0o777 == 0o600


def test_health_offers_the_smoke_test_model(link, backend):
    conn, _ = backend
    build_shot_scene()
    link.check_health(conn)
    drain_until(lambda: not link.state.checking)
    assert link.state.health == "ok"
    smoke = next(m for m in link.state.models if m["name"] == "smoke-test")
    assert smoke["available"]
    assert link.model_items()[0][0] == "smoke-test"


def test_wrong_token_message(link, backend):
    conn, _ = backend
    with pytest.raises(BackendError) as caught:
        Client(Connection(port=conn.port, token="wrong")).health()
    assert caught.value.status == 401
    assert "rejected the token (401)" in str(caught.value)


def test_plan_imports_the_servers_plan_as_cameras(link, backend, tmp_path):
    conn, _ = backend
    scene = build_shot_scene()
    before = {o.name for o in bpy.data.objects}
    link.plan(scene, conn, tmp_path)
    drain_until(lambda: not link.state.planning, timeout=60)
    assert not link.state.message_is_error, link.state.message
    assert link.state.message.startswith("Plan Shots: Imported 2 shots")
    plan = bpy.data.collections["ShotBridge Plan"]
    cameras = [o for o in plan.objects if o.type == "CAMERA"]
    assert len(cameras) == 2
    # The user's objects are all still there; only plan cameras were added.
    assert before <= {o.name for o in bpy.data.objects}
    assert {o.name for o in bpy.data.objects} - before == {o.name for o in cameras}


def test_plan_with_the_learned_planner_says_which_weights_are_missing(link, backend, tmp_path):
    conn, _ = backend
    scene = build_shot_scene()
    scene.shotbridge.planner = "learned"
    objects = sorted(o.name for o in bpy.data.objects)
    link.plan(scene, conn, tmp_path)
    drain_until(lambda: not link.state.planning, timeout=60)
    assert link.state.message_is_error
    assert "learned planner's weights are missing" in link.state.message
    assert sorted(o.name for o in bpy.data.objects) == objects


def test_generate_smoke_test_attaches_the_video_at_the_shot_start(link, backend, tmp_path):
    conn, _ = backend
    scene = build_shot_scene()
    png = preview.first_frame_png(scene, bpy.data.objects["CamB"], 7, tmp_path, "shot_b")
    [job] = link.generate(scene, ["shot_b"], conn, tmp_path, {"shot_b": png})
    progress = []
    drain_until(lambda: progress.append(job.progress) or not job.active, timeout=120)
    assert job.status == "attached", job.message
    assert job.video.exists() and job.video.read_bytes()[4:8] == b"ftyp"
    background = preview.shotbridge_background(bpy.data.objects["CamB"])
    assert background.source == "MOVIE_CLIP"
    assert background.clip.frame_start == 7
    assert background.clip.frame_duration == link.model_frame_count(5) == 5
    assert background.alpha == pytest.approx(scene.shotbridge.preview_alpha)


def test_generate_all_shots_and_free_gpu_memory(link, backend, tmp_path):
    conn, _ = backend
    scene = build_shot_scene()
    jobs = link.generate(scene, None, conn, tmp_path)
    drain_until(lambda: not any(job.active for job in jobs), timeout=120)
    assert [job.status for job in jobs] == ["attached", "attached"], [j.message for j in jobs]
    clip_a = preview.shotbridge_background(bpy.data.objects["CamA"]).clip
    assert (clip_a.frame_start, clip_a.frame_duration) == (1, 9)  # 6 frames asked as 4k+1
    link.unload(conn)
    drain_until(lambda: not link.state.unloading)
    assert link.state.message.startswith("Free GPU Memory: ")
    assert not link.state.message_is_error


def test_cancel_a_job_on_the_real_backend(link, backend, tmp_path):
    conn, _ = backend
    scene = build_shot_scene()
    scene.shotbridge.steps = 200  # long enough to be cancelled while it runs
    [job] = link.generate(scene, ["shot_a"], conn, tmp_path)
    drain_until(lambda: job.status == "running" and job.progress > 0, timeout=60)
    assert link.cancel(scene.name, "shot_a")  # between two denoising steps
    drain_until(lambda: not job.active, timeout=60)
    assert job.status == "cancelled", job.message
    assert preview.shotbridge_background(bpy.data.objects["CamA"]) is None
    final = Client(conn).job(job.job_id)
    assert final["status"] == "cancelled"

