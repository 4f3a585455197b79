"""``python -m backend serve`` as the add-on starts it: a process of its own, killed hard in the
middle of a job and started again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.server import host_warning, is_loopback
from tests.backend.server.conftest import ROOT, golden, wait_for

START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(home: Path, port: int, log: Path) -> tuple[subprocess.Popen, httpx.Client]:
    env = {**os.environ, "SHOTBRIDGE_HOME": str(home)}
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port",
                                    str(port)], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        token_path = home / "token"
        if token_path.is_file() and token_path.read_text().strip():
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0, headers={
                "Authorization": f"Bearer {token_path.read_text().strip()}"})
            try:
                if client.get("/health").status_code == 200:
                    return process, client
            except httpx.TransportError:
                pass
            client.close()
        time.sleep(0.1)


def test_serve_survives_a_crash_mid_job(tmp_path: Path) -> None:
    home, log, port = tmp_path / "home", tmp_path / "serve.log", _free_port()
    process, client = _serve(home, port, log)
    try:
        slow = {"num_inference_steps": 1000, "num_frames": 33, "width": 128}
        job = client.post("/jobs", json={"model": "smoke-test", "sequence": golden(),
                                         "options": slow}).json()
        deadline = time.monotonic() + 30
        while client.get(f"/jobs/{job['id']}").json()["progress"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        client.close()
        process.kill()  # no shutdown handler runs: the job stays "running" in the database
        process.wait(10)

    process, client = _serve(home, port, log)
    try:
        (found,) = client.get("/jobs").json()["jobs"]
        assert found["id"] == job["id"] and found["status"] == "interrupted"
        response = client.post(f"/jobs/{job['id']}/resubmit")
        assert response.status_code == 202
        again = response.json()
        deadline = time.monotonic() + 30
        while client.get(f"/jobs/{again['id']}").json()["progress"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The smoke test's own cancellation: the diffusers loop is interrupted between steps.
        assert client.delete(f"/jobs/{again['id']}").status_code == 200
        cancelled = wait_for(client, again["id"], "cancelled")
        assert cancelled["progress"] < 0.5 and cancelled["video"] is None
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal it caught.
        assert process.wait(30) in (0, -signal.SIGTERM)
    output = log.read_text()
    assert "Traceback" not in output
    assert output.count("Application shutdown complete") == 1
    assert f"token in {home / 'token'}" in output


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("0.0.0.0", False), ("192.168.1.20", False), ("::", False), ("example.com", False),
])
def test_only_loopback_hosts_are_quiet(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    warning = host_warning(host, 7862)
    assert (warning is None) is loopback
    if warning:
        assert warning.startswith(f"warning: serving on {host}") and "7862" in warning
