"""blender_addon.service in real Blender against a real HTTP peer: worker -> queue -> timer.

``drain_until`` plays Blender's main thread: it calls ``service.tick``, the function that
``bpy.app.timers`` runs in Blender. Everything the worker threads produce reaches the scene only
through it.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import pytest

from blender_addon import preview
from blender_addon.client import Connection
from tests.addon.conftest import PEER_TOKEN, drain_until, free_port
from tests.addon.contract_peer import FAIL_MESSAGE

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def conn(peer, token: str = PEER_TOKEN) -> Connection:
    return Connection(port=peer.port, token=token, timeout=5.0)


def scene_fingerprint(scene: bpy.types.Scene) -> dict:
    """What an error must leave alone: objects, cameras' backgrounds, markers, settings."""
    return {
        "objects": sorted(obj.name for obj in bpy.data.objects),
        "clips": sorted(clip.name for clip in bpy.data.movieclips),
        "backgrounds": {cam.name: len(cam.background_images) for cam in bpy.data.cameras},
        "markers": sorted((m.name, m.frame) for m in scene.timeline_markers),
        "range": (scene.frame_start, scene.frame_end, scene.frame_current),
        "render": preview.render_settings_snapshot(scene),
        "strips": scene.sequence_editor is not None,
    }


def finished(link, scene, *shots):
    jobs = link.jobs_of(scene)
    return lambda: all(shot in jobs and not jobs[shot].active for shot in shots)


def test_frame_counts_round_up_to_4k_plus_1(link):
    assert [link.model_frame_count(n) for n in (1, 2, 5, 6, 9, 10, 48)] == [1, 5, 5, 9, 9, 13, 49]


def test_the_timer_is_registered_and_drains_the_queue(link):
    assert bpy.app.timers.is_registered(link.tick)
    ran = []
    link.worker.submit(lambda emit: 42, ran.append, ran.append).join(5)
    assert ran == []  # a worker thread never runs callbacks
    assert link.tick() in (link.BUSY_INTERVAL, link.IDLE_INTERVAL)
    assert ran == [42]


def test_health_fills_the_status_and_the_model_selector(link, peer, shot_scene):
    assert shot_scene.shotbridge.model == "smoke-test"
    link.check_health(conn(peer))
    assert link.state.checking
    drain_until(lambda: not link.state.checking)
    assert (link.state.health, link.state.device, link.state.version) == ("ok", "cpu", "0.1.0")
    assert [item[0] for item in link.model_items()] == ["smoke-test", "wan-camera", "fail",
                                                        "slow"]
    assert link.model_items()[1][3] == "ERROR"  # weights missing
    shot_scene.shotbridge.model = "wan-camera"
    assert shot_scene.shotbridge.model == "wan-camera"


def test_backend_down_is_a_clear_message_and_changes_nothing(link, shot_scene, tmp_path):
    port = free_port()
    before = scene_fingerprint(shot_scene)
    link.check_health(Connection(port=port))
    link.generate(shot_scene, ["shot_a"], Connection(port=port), tmp_path)
    drain_until(finished(link, shot_scene, "shot_a"))
    expected = f"ShotBridge backend is not running on 127.0.0.1:{port}: start it from the panel"
    assert link.state.health == "down" and link.state.health_message == expected
    assert link.jobs_of(shot_scene)["shot_a"].message == expected
    assert link.state.message == f"Generate Preview: shot_a: {expected}"
    assert link.state.message_is_error
    assert scene_fingerprint(shot_scene) == before


def test_wrong_token_is_a_clear_message_and_changes_nothing(link, peer, shot_scene, tmp_path):
    before = scene_fingerprint(shot_scene)
    link.generate(shot_scene, None, conn(peer, token="stale"), tmp_path)
    drain_until(finished(link, shot_scene, "shot_a", "shot_b"))
    assert "rejected the token (401)" in link.state.message and link.state.message_is_error
    assert "Traceback" not in link.state.message
    assert scene_fingerprint(shot_scene) == before
    assert not (tmp_path / "previews").exists()


def test_plan_shows_the_501_message_and_changes_nothing(link, peer, shot_scene, tmp_path):
    before = scene_fingerprint(shot_scene)
    link.plan(shot_scene, conn(peer), tmp_path)
    assert link.state.planning
    drain_until(lambda: not link.state.planning)
    assert link.state.message.startswith("Plan Shots: the shot planner is not available yet")
    assert link.state.message_is_error
    assert scene_fingerprint(shot_scene) == before
    sent = peer.seen("POST", "/plan")[0]
    assert sent["prompt"] == "A box on a plain." and sent["planner"] == "grammar"
    assert sent["shots"] == [{"name": "shot_a", "prompt": "push in"},
                             {"name": "shot_b", "prompt": "orbit"}]
    context = sent["scene"]
    assert context["fps"] == 24 and context["resolution"] == [64, 36]
    assert context["camera"]["name"] == "CamA" and len(context["camera"]["K"]) == 4
    assert context["camera"]["c2w"][1][3] == pytest.approx(-6.0)
    [box] = context["subjects"]
    assert box["name"] == "Box" and box["bbox_max"][2] == pytest.approx(1.0)


def test_a_plan_that_arrives_is_imported_as_cameras(link, peer, shot_scene, tmp_path):
    plan = json.loads((GOLDEN / "two_shots.json").read_text())
    peer.plan_answer = (200, plan)
    link.plan(shot_scene, conn(peer), tmp_path)
    drain_until(lambda: not link.state.planning)
    assert not link.state.message_is_error, link.state.message
    assert link.state.message.startswith("Plan Shots: Imported 2 shots")
    plan_collection = bpy.data.collections["ShotBridge Plan"]
    assert len(plan_collection.objects) == len(plan["shots"])
    assert [p.suffix for p in (tmp_path / "plans").iterdir()] == [".json"]


def test_plan_needs_a_prompt_before_anything_is_sent(link, peer, shot_scene, tmp_path):
    settings = shot_scene.shotbridge
    settings.global_prompt = ""
    settings.shots.clear()
    with pytest.raises(link.LinkError, match="write a global prompt"):
        link.plan(shot_scene, conn(peer), tmp_path)
    assert peer.seen("POST", "/plan") == []


def test_generate_downloads_and_attaches_at_the_shots_first_frame(link, peer, shot_scene,
                                                                  tmp_path):
    shot_scene.shotbridge.preview_alpha = 0.7
    png = b"\x89PNG first frame"
    [job] = link.generate(shot_scene, ["shot_b"], conn(peer), tmp_path, {"shot_b": png})
    assert job.status == "submitting" and job.active
    statuses = []
    drain_until(lambda: statuses.append(job.status) or not job.active)
    assert job.status == "attached", job.message
    assert {"queued", "running"} & set(statuses)
    assert job.video.parent == tmp_path / "previews" and job.video.exists()
    sent = peer.seen("POST", "/jobs")[0]
    assert sent["model"] == "smoke-test" and sent["shots"] == ["shot_b"]
    assert sent["options"]["num_frames"] == 5 and sent["image"] is not None
    assert sent["sequence"]["version"] == 1 and len(sent["sequence"]["shots"]) == 2
    background = preview.shotbridge_background(bpy.data.objects["CamB"])
    assert background.source == "MOVIE_CLIP"
    assert background.clip.frame_start == 7
    assert background.clip.frame_duration == 5
    assert background.alpha == pytest.approx(0.7)
    assert preview.shotbridge_background(bpy.data.objects["CamA"]) is None
    assert link.state.message == "Generate Preview: shot_b: preview attached to CamB"


def test_generate_all_shots_sends_one_job_per_shot(link, peer, shot_scene, tmp_path):
    shot_scene.shotbridge.preview_strips = True
    jobs = link.generate(shot_scene, None, conn(peer), tmp_path)
    assert [job.shot for job in jobs] == ["shot_a", "shot_b"]
    drain_until(finished(link, shot_scene, "shot_a", "shot_b"))
    assert [job.status for job in jobs] == ["attached", "attached"]
    for camera, start in (("CamA", 1), ("CamB", 7)):
        assert preview.shotbridge_background(bpy.data.objects[camera]).clip.frame_start == start
    assert preview.shotbridge_strip(shot_scene, "shot_b").frame_final_start == 7


def choose_model(link, peer, scene, name: str) -> None:
    """Pick one of the peer's models the way the panel does: health first, then the selector."""
    link.check_health(conn(peer))
    drain_until(lambda: not link.state.checking)
    scene.shotbridge.model = name


def test_a_failed_job_shows_its_message_and_changes_nothing(link, peer, shot_scene, tmp_path):
    choose_model(link, peer, shot_scene, "fail")
    before = scene_fingerprint(shot_scene)
    [job] = link.generate(shot_scene, ["shot_a"], conn(peer), tmp_path)
    drain_until(lambda: not job.active)
    assert job.status == "failed"
    assert job.message == f"job failed: {FAIL_MESSAGE}"
    assert link.state.message == f"Generate Preview: shot_a: job failed: {FAIL_MESSAGE}"
    assert link.state.message_is_error
    assert scene_fingerprint(shot_scene) == before
    assert not (tmp_path / "previews").exists()


def test_cancel_sends_delete_and_changes_nothing(link, peer, shot_scene, tmp_path):
    choose_model(link, peer, shot_scene, "slow")
    before = scene_fingerprint(shot_scene)
    [job] = link.generate(shot_scene, ["shot_a"], conn(peer), tmp_path)
    assert not link.cancel(shot_scene.name, "shot_b")  # no job there
    drain_until(lambda: job.status == "running")
    assert 0.0 <= job.progress < 1.0 and job.message.startswith("denoising")
    assert link.cancel(shot_scene.name, "shot_a")
    assert job.message == "cancelling"
    drain_until(lambda: not job.active)
    assert job.status == "cancelled" and not link.state.message_is_error
    assert len(peer.seen("DELETE", f"/jobs/{job.job_id}")) == 1
    assert scene_fingerprint(shot_scene) == before


def test_cancel_before_the_job_id_is_known(link, peer, shot_scene, tmp_path):
    choose_model(link, peer, shot_scene, "slow")
    [job] = link.generate(shot_scene, ["shot_a"], conn(peer), tmp_path)
    assert link.cancel(shot_scene.name, "shot_a")  # the POST may still be on its way
    drain_until(lambda: not job.active)
    assert job.status == "cancelled"
    assert peer.seen("DELETE", f"/jobs/{job.job_id}")


def test_a_shot_being_generated_is_not_sent_twice(link, peer, shot_scene, tmp_path):
    choose_model(link, peer, shot_scene, "slow")
    link.generate(shot_scene, ["shot_a"], conn(peer), tmp_path)
    with pytest.raises(link.LinkError, match="shot_a is being generated already"):
        link.generate(shot_scene, None, conn(peer), tmp_path)
    assert len(peer.seen("POST", "/jobs")) <= 1


def test_free_gpu_memory(link, peer):
    link.unload(conn(peer))
    assert link.state.unloading
    drain_until(lambda: not link.state.unloading)
    assert link.state.message == "Free GPU Memory: smoke-test (cpu)"
    assert peer.seen("POST", "/models/unload") == [{}]


def test_backend_buttons_are_live_now(link, shot_scene):
    assert bpy.ops.shotbridge.plan_shots.poll()
    assert bpy.ops.shotbridge.generate_preview.poll()
    assert bpy.ops.shotbridge.free_gpu_memory.poll()
    assert bpy.ops.shotbridge.backend_start.poll()
    assert not bpy.ops.shotbridge.backend_stop.poll()  # nothing started from this Blender


def test_start_backend_without_a_python_says_where_to_set_it(link, tmp_path):
    with pytest.raises(link.LinkError, match="Backend Python in the add-on preferences"):
        link.start_backend(str(tmp_path / "missing" / "python"), free_port(), tmp_path)
    assert not link.backend_process_running()


def test_plan_prompts_are_added_and_removed_from_the_panel(shot_scene):
    bpy.ops.shotbridge.add_shot_prompt(name="")
    bpy.ops.shotbridge.add_shot_prompt(name="")
    shots = shot_scene.shotbridge.shots
    assert [item.name for item in shots] == ["shot_a", "shot_b", "shot_010", "shot_020"]
    bpy.ops.shotbridge.remove_shot_prompt(name="shot_010")
    assert [item.name for item in shots] == ["shot_a", "shot_b", "shot_020"]
