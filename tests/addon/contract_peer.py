"""A real HTTP peer on 127.0.0.1 that speaks the backend API the add-on's client calls.

The client's own tests talk to it over real sockets (standard library ``http.server``): bearer
token, JSON errors, jobs that move through queued -> running -> succeeded with a real MP4, jobs
that fail, jobs that run until cancelled, and 501 from ``/plan`` as the contract prescribes until
the planner lands. The backend service's tests cover the product server; the integration tests
(``test_backend_integration.py``) run the add-on against it.

Models: ``smoke-test`` succeeds after a few steps with ``num_frames`` frames (default 9);
``fail`` fails with :data:`FAIL_MESSAGE`; ``slow`` runs until it is cancelled.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import imageio
import numpy as np

FAIL_MESSAGE = "CUDA out of memory while decoding: lower the resolution or the frame count"
MODELS = [
    {"name": "smoke-test", "kind": "smoke-test", "available": True, "message": "ready"},
    {"name": "wan-camera", "kind": "camera-dit", "available": False,
     "message": "weights missing: put them in models/wan-camera"},
    {"name": "fail", "kind": "smoke-test", "available": True, "message": "always fails"},
    {"name": "slow", "kind": "smoke-test", "available": True, "message": "runs until cancelled"},
]
STEP_SECONDS = 0.02


@dataclass
class PeerJob:
    id: str
    model: str
    shots: list[str] | None
    options: dict[str, Any]
    image: str | None
    status: str = "queued"
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    video_path: Path | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "status": self.status,
                "progress": self.progress, "stage": self.stage, "error": self.error,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "shots": self.shots or [],
                "video": f"/jobs/{self.id}/video" if self.status == "succeeded" else None}


class ContractPeer(ThreadingHTTPServer):
    """``with ContractPeer(token, folder) as peer:`` serves on ``peer.port`` in a thread."""

    daemon_threads = True

    def __init__(self, token: str, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.folder = folder
        self.jobs: dict[str, PeerJob] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, Any]] = []
        self.plan_answer: tuple[int, dict[str, Any]] = (
            501, {"error": "the shot planner is not available yet: plan cameras by hand or "
                           "import a ShotSequence", "field": None})
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> ContractPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        with self.lock:
            for job in self.jobs.values():
                if job.status in ("queued", "running"):
                    job.status = "cancelled"

    def seen(self, method: str, path_pattern: str) -> list[Any]:
        """Bodies of the requests seen with ``method`` on paths matching ``path_pattern``."""
        with self.lock:
            return [body for m, p, body in self.requests
                    if m == method and re.fullmatch(path_pattern, p)]

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(self, body: dict[str, Any]) -> PeerJob:
        job = PeerJob(uuid.uuid4().hex, body["model"], body.get("shots"),
                      body.get("options") or {}, body.get("image"))
        with self.lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return job

    def _set(self, job: PeerJob, **changes: Any) -> bool:
        with self.lock:
            if job.status in ("cancelled", "failed", "succeeded"):
                return False
            for name, value in changes.items():
                setattr(job, name, value)
            job.updated_at = time.time()
            return True

    def _run(self, job: PeerJob) -> None:
        time.sleep(STEP_SECONDS)
        steps = 4
        for step in range(10**6 if job.model == "slow" else steps):
            if not self._set(job, status="running", stage="denoising",
                             progress=min(0.9, step / steps)):
                return
            if job.model == "fail" and step == 1:
                self._set(job, status="failed", stage="failed", error=FAIL_MESSAGE)
                return
            time.sleep(STEP_SECONDS)
        path = self.folder / f"{job.id}.mp4"
        frames = int(job.options.get("num_frames") or 9)
        images = [np.full((36, 64, 3), (i * 25) % 255, np.uint8) for i in range(frames)]
        imageio.mimwrite(path, images, fps=24, codec="libx264", macro_block_size=1,
                         pixelformat="yuv420p", output_params=["-loglevel", "error"])
        self._set(job, video_path=path, status="succeeded", stage="done", progress=1.0)


class _Handler(BaseHTTPRequestHandler):
    server: ContractPeer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, field: str | None = None) -> None:
        self._send(status, {"error": message, "field": field})

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        with self.server.lock:
            self.server.requests.append((method, self.path, body))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._error(401, "missing or wrong token")
        if method == "GET" and self.path == "/health":
            return self._send(200, {"status": "ok", "version": "0.1.0", "device": "cpu",
                                    "models": MODELS})
        if method == "POST" and self.path == "/plan":
            return self._send(*self.server.plan_answer)
        if method == "POST" and self.path == "/models/unload":
            return self._send(200, {"unloaded": ["smoke-test"], "device": "cpu"})
        if method == "POST" and self.path == "/jobs":
            if not isinstance(body, dict) or not isinstance(body.get("sequence"), dict):
                return self._error(422, "the request has no ShotSequence", "body.sequence")
            if body.get("model") not in ("smoke-test", "fail", "slow"):
                return self._error(503, f"model {body.get('model')!r} has no weights",
                                   "body.model")
            return self._send(202, self.server.add_job(body).as_json())
        match = re.fullmatch(r"/jobs/([0-9a-f]+)(/video)?", self.path)
        job = self.server.jobs.get(match.group(1)) if match else None
        if job is None:
            return self._error(404, f"no job {self.path.split('/')[2] if match else self.path}")
        if method == "GET" and match.group(2):
            if job.status != "succeeded":
                return self._error(404, f"job {job.id} has no video yet")
            data = job.video_path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if method == "GET":
            with self.server.lock:
                return self._send(200, job.as_json())
        if method == "DELETE":
            if not self.server._set(job, status="cancelled", stage="cancelled"):
                return self._error(409, f"job {job.id} has ended ({job.status})")
            with self.server.lock:
                return self._send(200, job.as_json())
        return self._error(405, f"{method} {self.path} is not part of the API")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")
