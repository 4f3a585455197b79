"""The server's parts without HTTP: data folder, token, sizes, error paths, the job store."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from backend.server.errors import location_path, sequence_field
from backend.server.settings import Settings, default_data_dir, ensure_token, parse_size
from backend.server.store import JobStore


def test_data_folder_rule() -> None:
    home = {"HOME": "/home/ann"}
    assert default_data_dir({**home, "SHOTBRIDGE_HOME": "/data/sb"}) == Path("/data/sb")
    assert default_data_dir(home, "linux") == Path("/home/ann/.local/share/shotbridge")
    assert default_data_dir({**home, "XDG_DATA_HOME": "/x"}, "linux") == Path("/x/shotbridge")
    assert default_data_dir(home, "darwin") == Path(
        "/home/ann/Library/Application Support/ShotBridge")
    assert default_data_dir({**home, "APPDATA": "C:/Users/ann/AppData/Roaming"}, "win32") == Path(
        "C:/Users/ann/AppData/Roaming/ShotBridge")


def test_settings_from_env(tmp_path: Path) -> None:
    settings = Settings.from_env({"SHOTBRIDGE_HOME": str(tmp_path),
                                  "SHOTBRIDGE_DISK_LIMIT": "1.5G"}, preload=())
    assert settings.data_dir == tmp_path and settings.disk_limit_bytes == int(1.5 * 1024**3)
    assert settings.preload == () and settings.token_path == tmp_path / "token"
    assert parse_size("20G") == 20 * 1024**3 and parse_size("500MiB") == 500 * 1024**2
    assert parse_size("123") == 123
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_token_is_created_once_and_kept_private(tmp_path: Path) -> None:
    token = ensure_token(tmp_path / "new")
    path = tmp_path / "new" / "token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_token(tmp_path / "new") == token
    path.chmod(0o644)
    assert ensure_token(tmp_path / "new") == token
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("")
    assert ensure_token(tmp_path / "new") not in ("", token)


@pytest.mark.parametrize(("message", "field"), [
    ("fps: -1.0 must be a positive finite number", "fps"),
    ("shots[0] 'shot_010'.c2w: expected shape (5, 4, 4)", "shots[0].c2w"),
    ("shots[1] \"it's\".K[3]: fx = -1 must be positive", "shots[1].K[3]"),
    ("shots[0] 'a'.c2w[0][1][2]: value nan is not finite", "shots[0].c2w[0][1][2]"),
    ("shots[2] 'b': empty shot: frame_end 1 < frame_start 2", "shots[2]"),
    ("objects[0] 'robot'.positions: expected shape (3, 3)", "objects[0].positions"),
    ("shots[0] 'a'.subjects[1].name: duplicate subject", "shots[0].subjects[1].name"),
    ("resolution[0]: expected an integer, got 'x'", "resolution[0]"),
    ("<root>: expected an object, got list", None),
    ("something without a path", None),
])
def test_sequence_error_fields(message: str, field: str | None) -> None:
    assert sequence_field(message) == field


def test_location_paths() -> None:
    assert location_path(("body", "options", "seed")) == "body.options.seed"
    assert location_path(("body", "shots", 3)) == "body.shots[3]"
    assert location_path(()) == ""


def _store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")


def test_store_persists_and_interrupts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    changes: list[tuple[str, int, str]] = []
    store.on_change = lambda job, version: changes.append((job.id, version, job.status))
    done = store.create("smoke-test", ["a"], {"model": "smoke-test"})
    store.update(done.id, status="succeeded", progress=1.0, stage="done", video="video.mp4")
    running = store.create("smoke-test", ["a", "b"], {"model": "smoke-test"}, b"png")
    store.update(running.id, status="running", progress=0.25)
    queued = store.create("smoke-test", ["b"], {"model": "smoke-test"})
    assert [change for change in changes if change[0] == running.id] == [
        (running.id, 0, "queued"), (running.id, 1, "running")]
    assert store.update_if(done.id, {"queued"}, status="cancelled") is None
    (tmp_path / "jobs" / "orphan").mkdir()
    store.close()

    store = _store(tmp_path)
    assert sorted(store.interrupted) == sorted([running.id, queued.id])
    jobs = {job.id: job for job in store.list()}
    assert [job.id for job in store.list()] == [queued.id, running.id, done.id]
    assert jobs[done.id].status == "succeeded" and jobs[done.id].video == "video.mp4"
    assert jobs[running.id].status == "interrupted" and jobs[running.id].progress == 0.25
    assert jobs[running.id].shots == ["a", "b"]
    assert store.read_request(running.id) == ({"model": "smoke-test"}, b"png")
    assert not (tmp_path / "jobs" / "orphan").exists()
    store.close()
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'interrupted'").fetchone() == (
            2,)


def test_store_disk_bound(tmp_path: Path) -> None:
    store = _store(tmp_path)
    jobs = []
    for status in ("succeeded", "failed", "succeeded", "running"):
        job = store.create("smoke-test", ["a"], {"pad": "x" * 100})
        (store.job_dir(job.id) / "video.mp4").write_bytes(b"v" * 1000)
        store.measure(job.id)
        store.update(job.id, status=status, video="video.mp4" if status == "succeeded" else None)
        jobs.append(job.id)
        time.sleep(0.001)  # distinct creation times
    per_job = store.measure(jobs[0])
    assert store.disk_usage() == 4 * per_job
    # Room for 3.5 jobs: the oldest finished job's output goes, its request stays.
    assert store.enforce_disk_limit(int(3.5 * per_job)) == [jobs[0]]
    assert store.get(jobs[0]).video is None and not (store.job_dir(jobs[0]) / "video.mp4").exists()
    assert (store.job_dir(jobs[0]) / "request.json").exists()
    # Room for almost nothing: every finished job goes, the running one stays whole.
    removed = store.enforce_disk_limit(1)
    assert removed == [jobs[1], jobs[2], jobs[0], jobs[1], jobs[2]]
    assert [job.id for job in store.list()] == [jobs[3]]
    assert (store.job_dir(jobs[3]) / "video.mp4").exists()
    assert store.disk_usage() == per_job
    store.close()
