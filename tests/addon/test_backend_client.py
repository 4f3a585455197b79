"""blender_addon.client: the backend API over real HTTP, its messages, and the Worker's queue."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from blender_addon.client import (
    BackendError,
    Client,
    Connection,
    Worker,
    data_dir,
    job_message,
    token_file,
)
from tests.addon.conftest import PEER_TOKEN, free_port
from tests.addon.contract_peer import FAIL_MESSAGE

SEQUENCE = {"format": "shotbridge.shots", "version": 1, "shots": []}


def client_for(peer, token: str = PEER_TOKEN) -> Client:
    return Client(Connection(port=peer.port, token=token, timeout=5.0))


def test_data_dir_follows_the_contract_on_every_system():
    home = Path.home()
    assert data_dir({"SHOTBRIDGE_HOME": "/data/sb"}, "linux") == Path("/data/sb")
    assert data_dir({}, "linux") == home / ".local" / "share" / "shotbridge"
    assert data_dir({"XDG_DATA_HOME": "/xdg"}, "linux") == Path("/xdg/shotbridge")
    assert data_dir({}, "darwin") == home / "Library" / "Application Support" / "ShotBridge"
    assert data_dir({"APPDATA": "C:/Users/a/AppData/Roaming"}, "win32") == Path(
        "C:/Users/a/AppData/Roaming/ShotBridge")
    assert token_file({"SHOTBRIDGE_HOME": "/data/sb"}) == Path("/data/sb/token")


def test_health_lists_the_models(peer):
    health = client_for(peer).health()
    assert health["status"] == "ok"
    assert [m["name"] for m in health["models"]] == ["smoke-test", "wan-camera", "fail", "slow"]


def test_token_comes_from_the_token_file_when_the_preferences_leave_it_empty(
        peer, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOTBRIDGE_HOME", str(tmp_path))
    (tmp_path / "token").write_text(PEER_TOKEN + "\n")
    assert client_for(peer, token="").health()["status"] == "ok"


def test_wrong_token_says_so_and_how_to_fix_it(peer):
    with pytest.raises(BackendError) as caught:
        client_for(peer, token="not-the-token").health()
    assert caught.value.status == 401
    message = str(caught.value)
    assert "rejected the token (401)" in message and "preferences" in message
    assert "Traceback" not in message


def test_backend_not_running_names_the_address_and_the_fix():
    port = free_port()
    with pytest.raises(BackendError) as caught:
        Client(Connection(port=port, token="x")).health()
    assert str(caught.value) == (f"ShotBridge backend is not running on 127.0.0.1:{port}: "
                                 "start it from the panel")
    assert caught.value.status is None


def test_plan_answers_501_with_the_servers_message(peer):
    with pytest.raises(BackendError) as caught:
        client_for(peer).plan("a prompt", [{"name": "s", "prompt": "p"}], {"fps": 24})
    assert caught.value.status == 501
    assert str(caught.value).startswith("the shot planner is not available yet")
    assert peer.seen("POST", "/plan")[0]["prompt"] == "a prompt"


def test_server_errors_show_their_error_text_and_field(peer):
    with pytest.raises(BackendError) as caught:
        client_for(peer).submit_job("no-such-model", SEQUENCE)
    assert caught.value.status == 503
    assert str(caught.value) == "model 'no-such-model' has no weights [body.model]"
    with pytest.raises(BackendError, match=r"^no job 0123abcd$"):
        client_for(peer).job("0123abcd")


def test_a_job_runs_to_its_video(peer, tmp_path):
    client = client_for(peer)
    job = client.submit_job("smoke-test", SEQUENCE, ["shot_a"], b"\x89PNG fake",
                            {"seed": 3, "num_frames": 5})
    assert job["status"] == "queued"
    updates = []
    final = client.wait_for_job(job["id"], updates.append, interval=0.01, timeout=10)
    assert final["status"] == "succeeded" and final["video"] == f"/jobs/{job['id']}/video"
    assert updates[-1] == final and len(updates) >= 2
    body = peer.seen("POST", "/jobs")[0]
    assert body["shots"] == ["shot_a"] and body["options"] == {"seed": 3, "num_frames": 5}
    assert body["image"] == "iVBORyBmYWtl"  # base64 of the PNG bytes
    path = client.download_video(job["id"], tmp_path / "out" / "video.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"
    assert not (tmp_path / "out" / "video.mp4.part").exists()


def test_a_failed_job_carries_its_own_message(peer):
    client = client_for(peer)
    job = client.submit_job("fail", SEQUENCE)
    final = client.wait_for_job(job["id"], lambda _: None, interval=0.01, timeout=10)
    assert final["status"] == "failed"
    assert job_message(final) == f"job failed: {FAIL_MESSAGE}"


def test_cancel_sends_delete_and_ends_cancelled(peer):
    client = client_for(peer)
    job = client.submit_job("slow", SEQUENCE)
    cancel = threading.Event()

    def on_update(update):
        if update["status"] == "running":
            cancel.set()

    final = client.wait_for_job(job["id"], on_update, cancel=cancel, interval=0.01, timeout=10)
    assert final["status"] == "cancelled"
    assert len(peer.seen("DELETE", f"/jobs/{job['id']}")) == 1
    with pytest.raises(BackendError) as caught:  # a finished job cannot be cancelled again
        client.cancel_job(job["id"])
    assert caught.value.status == 409


def test_unload_models(peer):
    assert client_for(peer).unload_models() == {"unloaded": ["smoke-test"], "device": "cpu"}
    assert peer.seen("POST", "/models/unload") == [{}]


def test_worker_results_wait_for_the_main_thread():
    worker = Worker()
    release = threading.Event()
    seen = []

    def task(emit):
        emit("half")
        release.wait(5)
        return "done"

    thread = worker.submit(task, lambda r: seen.append(("done", r, threading.current_thread())),
                           seen.append, lambda p: seen.append(("progress", p)))
    assert worker.busy
    release.set()
    thread.join(5)
    assert seen == []  # nothing runs until the main thread drains
    assert worker.drain() == 2
    assert seen[0] == ("progress", "half")
    assert seen[1][:2] == ("done", "done") and seen[1][2] is threading.main_thread()
    assert not worker.busy


def test_worker_turns_failures_into_one_line():
    worker = Worker()
    errors = []

    def backend_down(emit):
        raise BackendError("ShotBridge backend is not running on 127.0.0.1:1: start it")

    def bug(emit):
        raise KeyError("video")

    for task in (backend_down, bug):
        worker.submit(task, lambda _: None, errors.append).join(5)
    worker.drain()
    assert errors == ["ShotBridge backend is not running on 127.0.0.1:1: start it",
                      "unexpected error: KeyError: 'video'"]


def test_the_client_module_needs_no_blender():
    text = (Path(__file__).parents[2] / "blender_addon" / "client.py").read_text()
    assert "import bpy" not in text and "from bpy" not in text
