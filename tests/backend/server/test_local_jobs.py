"""`python -m backend generate` / `jobs`: the server's job path run in this process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from backend.server.local import list_jobs, run_job
from backend.server.lock import DataDirBusy, DataDirLock
from backend.server.schemas import JobRequest
from backend.server.settings import Settings
from tests.backend.server.conftest import GOLDEN, ROOT, golden


def _run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {"SHOTBRIDGE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_generate_command_writes_the_video_and_jobs_lists_it(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out" / "preview.mp4"
    result = _run_cli("generate", "--shots", str(GOLDEN / "two_shots.json"), "--out", str(out),
                      "--steps", "2", "--shot", "shot_020", home=home)
    assert result.returncode == 0, result.stderr
    # Not a terminal here: one progress line per change, ending at 100 %.
    lines = result.stderr.strip().splitlines()
    assert "denoising step 1/2" in result.stderr and lines[-1].endswith("100.0%  done")
    frames = iio.imread(out)
    assert frames.ndim == 4 and frames.shape[-1] == 3
    listed = _run_cli("jobs", home=home)
    assert listed.returncode == 0
    [line] = listed.stdout.strip().splitlines()
    assert "smoke-test" in line and "succeeded" in line and line.endswith("video.mp4")
    stored = json.loads((home / "jobs" / line.split()[0] / "request.json").read_text())
    assert stored["shots"] == ["shot_020"]


def test_generate_command_reports_refusals_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = _run_cli("generate", "--shots", str(GOLDEN / "two_shots.json"), "--out",
                       str(tmp_path / "x.mp4"), "--model", "camera-dit", home=home)
    assert missing.returncode == 2 and "camera-dit weights are missing" in missing.stderr
    unknown = _run_cli("generate", "--shots", str(GOLDEN / "two_shots.json"), "--out",
                       str(tmp_path / "x.mp4"), "--shot", "shot_999", home=home)
    assert unknown.returncode == 2 and "shot_999" in unknown.stderr
    for result in (missing, unknown):
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_a_running_server_owns_its_data_folder(start_server, data_dir: Path) -> None:
    server = start_server()
    body = JobRequest(model="smoke-test", sequence=golden())
    with pytest.raises(DataDirBusy, match="server"):
        run_job(server.settings, body, data_dir / "x.mp4")
    with pytest.raises(DataDirBusy, match=str(data_dir)):
        DataDirLock(data_dir, role="test").acquire()
    # Listing is read-only and works beside the server.
    client = server.client()
    job = client.post("/jobs", json={"model": "smoke-test", "sequence": golden(),
                                     "options": {"num_inference_steps": 1}}).json()
    assert job["id"] in [listed.id for listed in list_jobs(server.settings)]


def test_lock_is_released_when_the_owner_stops(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path)
    with DataDirLock(tmp_path, role="first"), pytest.raises(DataDirBusy, match="first"):
        DataDirLock(tmp_path, role="second").acquire()
    DataDirLock(tmp_path, role="second").acquire().release()
    assert list_jobs(settings) == []
