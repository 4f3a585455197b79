"""A real uvicorn server on a free loopback port, in a thread of the test process.

``start_server(settings=None, generators=None)`` builds the app with the public factory
``create_app`` and returns a :class:`RunningServer` once it answers; the data folder is
``tmp_path/home`` through ``SHOTBRIDGE_HOME``. Servers still running at the end of a test are
stopped. Test-only generators are plain :class:`Generator` subclasses passed to the factory.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from backend.generators import (
    CancelledCallback,
    GeneratedVideo,
    GenerationCancelled,
    GenerationRequest,
    Generator,
    ProgressCallback,
    builtin_generators,
)
from backend.server import Settings, create_app

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"


def golden(name: str = "two_shots") -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


class RunningServer:
    """A uvicorn server serving one app in a background thread."""

    def __init__(self, app: object, settings: Settings) -> None:
        self.settings = settings
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]},
                                       daemon=True)
        self.clients: list[httpx.Client] = []

    def start(self, timeout: float = 30.0) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    @property
    def token(self) -> str:
        return self.settings.token_path.read_text().strip()

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        """An HTTP client with the server's token (or ``token``; "" for none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.server.should_exit = True
        self.thread.join(30)
        self._socket.close()
        assert not self.thread.is_alive(), "the server did not stop"


StartServer = Callable[..., RunningServer]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SHOTBRIDGE_HOME", str(home))
    for variable in ("SHOTBRIDGE_DISK_LIMIT", "SHOTBRIDGE_MODELS_CONFIG",
                     "SHOTBRIDGE_CAMERA_DIT_PATH", "SHOTBRIDGE_CAMERA_DIT_CAMERA_ENCODER"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def start_server(data_dir: Path) -> Iterator[StartServer]:
    running: list[RunningServer] = []

    def start(settings: Settings | None = None, generators: list[Generator] | None = None,
              extra: list[Generator] | None = None) -> RunningServer:
        settings = settings or Settings.from_env()
        if extra is not None:
            generators = [*builtin_generators(settings.data_dir), *extra]
        server = RunningServer(create_app(settings, generators), settings)
        running.append(server)
        return server.start()

    yield start
    for server in running:
        if server.thread.is_alive():
            server.stop()


# --------------------------------------------------------------------------------------------
# Test-only generators, registered through create_app(settings, generators=[...])


class SlowGenerator(Generator):
    """Sleeps ``step_seconds`` per step for ``steps`` steps, checking ``cancelled()`` between
    them like a denoising loop; returns grey frames."""

    name = "slow-test"
    kind = "smoke-test"

    def __init__(self, steps: int = 200, step_seconds: float = 0.02) -> None:
        self.steps = steps
        self.step_seconds = step_seconds
        self.steps_done = 0
        self.started = threading.Event()

    def available(self) -> tuple[bool, str]:
        return True, "test generator: sleeps between steps"

    def load(self, device: str = "cpu") -> None:
        pass

    def unload(self) -> bool:
        return False

    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        self.started.set()
        steps = request.options.num_inference_steps or self.steps
        for step in range(steps):
            if cancelled():
                raise GenerationCancelled
            time.sleep(self.step_seconds)
            self.steps_done = step + 1
            progress((step + 1) / steps, f"step {step + 1}/{steps}")
        frames = np.full((5, 32, 32, 3), 128, np.uint8)
        return GeneratedVideo(frames=frames, fps=8.0,
                              shot_ranges=[(request.shots[0], 0, len(frames) - 1)])


class FailingGenerator(Generator):
    """Raises ``error`` half-way through."""

    kind = "smoke-test"

    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name
        self.error = error

    def available(self) -> tuple[bool, str]:
        return True, "test generator: always fails"

    def load(self, device: str = "cpu") -> None:
        pass

    def unload(self) -> bool:
        return False

    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        progress(0.5, "about to fail")
        raise self.error


# --------------------------------------------------------------------------------------------
# Client helpers


def read_events(client: httpx.Client, job_id: str, until: Callable[[dict], bool] | None = None,
                ) -> list[dict]:
    """The jobs from ``GET /jobs/{id}/events`` until the stream ends (or ``until(job)``)."""
    jobs = []
    with client.stream("GET", f"/jobs/{job_id}/events") as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                assert event == "job"
                jobs.append(json.loads(line.removeprefix("data:")))
                if until is not None and until(jobs[-1]):
                    break
    return jobs


def wait_for(client: httpx.Client, job_id: str, status: str | set[str],
             timeout: float = 30.0) -> dict:
    """Poll the job until its status is ``status`` (or one of them)."""
    wanted = {status} if isinstance(status, str) else status
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in wanted:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.02)


def submit(client: httpx.Client, model: str = "smoke-test", sequence: dict | None = None,
           **body: object) -> dict:
    response = client.post("/jobs", json={"model": model, "sequence": sequence or golden(),
                                          **body})
    assert response.status_code == 202, response.text
    return response.json()
