"""The backend's HTTP API from the add-on's side: standard library only, no ``bpy``.

Every call here blocks, so the add-on makes them in a worker thread (:class:`Worker`) and hands
the results to Blender's main thread through a queue; :mod:`.service` drains that queue from
a ``bpy.app.timers`` function. Failures become :class:`BackendError` with a message written for the
animator (backend not running, wrong token, the server's own error text), never a traceback.

The API is the contract between the add-on and the backend service: bearer token, JSON bodies,
errors as ``{"error": str, "field": str | null}``; see the service's OpenAPI page.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DEFAULT_PORT = 7862
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})

log = logging.getLogger(__name__)


class BackendError(Exception):
    """A backend call that failed; ``str(error)`` is the message to show in the panel."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """HTTP status of the answer, or None when no answer came (not running, timeout)."""


def data_dir(env: dict[str, str] | None = None, platform: str | None = None) -> Path:
    """The backend's data folder: ``$SHOTBRIDGE_HOME``, else the user data folder of the system.

    Linux ``$XDG_DATA_HOME/shotbridge`` (default ``~/.local/share/shotbridge``), macOS
    ``~/Library/Application Support/ShotBridge``, Windows ``%APPDATA%\\ShotBridge``; the same rule
    as the backend's, which writes its token there.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("SHOTBRIDGE_HOME"):
        return Path(env["SHOTBRIDGE_HOME"]).expanduser()
    home = Path.home()
    if platform == "darwin":
        return home / "Library" / "Application Support" / "ShotBridge"
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        return (Path(appdata) if appdata else home / "AppData" / "Roaming") / "ShotBridge"
    xdg = env.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "shotbridge"


def token_file(env: dict[str, str] | None = None) -> Path:
    """Where the backend writes its token on first start."""
    return data_dir(env) / "token"


@dataclass(frozen=True)
class Connection:
    """How to reach the backend: plain values read from the preferences on the main thread."""

    port: int = DEFAULT_PORT
    """Port on 127.0.0.1."""
    token: str = ""
    """Bearer token; empty: read the backend's token file at request time."""
    host: str = HOST
    """The backend binds the loopback address only."""
    timeout: float = 30.0
    """Seconds to wait for an answer to one request."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Client:
    """Blocking calls to the backend; use them from a worker thread, never from Blender's UI."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # -- API -----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: status, version, device and the models with their availability."""
        return self._json("GET", "/health", timeout=min(self.connection.timeout, 5.0))

    def plan(self, prompt: str, shots: list[dict[str, str]], scene: dict | None = None,
             image_png: bytes | None = None, planner: str = "grammar") -> dict[str, Any]:
        """``POST /plan``: the prompts (and scene context, first-frame image) -> ShotSequence."""
        body = {"prompt": prompt, "shots": shots, "scene": scene, "planner": planner,
                "image": encode_png(image_png)}
        return self._json("POST", "/plan", body)

    def submit_job(self, model: str, sequence: dict[str, Any], shots: list[str] | None = None,
                   image_png: bytes | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /jobs``: queue a video generation; returns the job (status ``queued``)."""
        body = {"model": model, "sequence": sequence, "shots": shots,
                "image": encode_png(image_png), "options": options or {}}
        return self._json("POST", "/jobs", body)

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``."""
        return self._json("GET", f"/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """``DELETE /jobs/{id}``: a queued job ends at once, a running one between steps."""
        return self._json("DELETE", f"/jobs/{job_id}")

    def unload_models(self) -> dict[str, Any]:
        """``POST /models/unload``: free the GPU memory the backend holds."""
        return self._json("POST", "/models/unload", {})

    def download_video(self, job_id: str, path: Path) -> Path:
        """``GET /jobs/{id}/video`` into ``path`` (written whole or not at all)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        try:
            with self._open("GET", f"/jobs/{job_id}/video") as answer, partial.open("wb") as out:
                while chunk := answer.read(1 << 16):
                    out.write(chunk)
            partial.replace(path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise BackendError(f"could not download the video of job {job_id} to {path}: "
                               f"{error}") from None
        return path

    def wait_for_job(self, job_id: str, on_update: Callable[[dict[str, Any]], None],
                     cancel: threading.Event | None = None, interval: float = 0.25,
                     timeout: float | None = None) -> dict[str, Any]:
        """Poll ``GET /jobs/{id}`` until the job ends; ``on_update`` sees every change.

        When ``cancel`` is set the job is cancelled on the server (``DELETE``) and waited for,
        so that the caller always ends with the server's own final state.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: tuple | None = None
        cancel_sent = False
        while True:
            if cancel is not None and cancel.is_set() and not cancel_sent:
                cancel_sent = True
                try:
                    self.cancel_job(job_id)
                except BackendError as error:
                    if error.status != 409:  # 409: it ended meanwhile, read its state below
                        raise
            job = self.job(job_id)
            key = (job.get("status"), job.get("progress"), job.get("stage"))
            if key != last:
                last = key
                on_update(job)
            if job.get("status") in TERMINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise BackendError(f"job {job_id} did not finish in {timeout:g} s")
            if cancel is not None:
                cancel.wait(interval)
            else:
                time.sleep(interval)

    # -- transport -----------------------------------------------------------------------------

    def _token(self) -> str:
        if self.connection.token:
            return self.connection.token
        path = token_file()
        try:
            return path.read_text().strip()
        except OSError:
            return ""

    def _open(self, method: str, path: str, body: dict | None = None,
              timeout: float | None = None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = f"http://{self.connection.address}{path}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.connection.timeout)
        except urllib.error.HTTPError as error:
            raise self._http_error(error, path) from None
        except (urllib.error.URLError, OSError) as error:
            raise self._no_answer(error) from None

    def _json(self, method: str, path: str, body: dict | None = None,
              timeout: float | None = None) -> dict[str, Any]:
        try:
            with self._open(method, path, body, timeout) as answer:
                raw = answer.read()
        except OSError as error:  # the answer broke off or timed out while being read
            raise self._no_answer(error) from None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise BackendError(f"the backend answered {method} {path} with something that is "
                               "not JSON; is another program using this port?") from None

    def _no_answer(self, error: BaseException) -> BackendError:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ConnectionRefusedError | ConnectionResetError):
            return BackendError(f"ShotBridge backend is not running on {self.connection.address}:"
                                " start it from the panel")
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return BackendError(f"ShotBridge backend on {self.connection.address} did not answer "
                                f"in {self.connection.timeout:g} s")
        return BackendError(f"cannot reach the ShotBridge backend on {self.connection.address}: "
                            f"{reason}")

    def _http_error(self, error: urllib.error.HTTPError, path: str) -> BackendError:
        status = error.code
        try:
            payload = json.loads(error.read() or b"{}")
        except (json.JSONDecodeError, OSError):
            payload = {}
        message = payload.get("error") if isinstance(payload, dict) else None
        field = payload.get("field") if isinstance(payload, dict) else None
        if status == 401:
            where = ("the token in the add-on preferences" if self.connection.token
                     else f"the token file {token_file()}")
            return BackendError(f"ShotBridge backend rejected the token (401): {where} does not "
                                "match the running backend's; fix the token in the add-on "
                                "preferences or leave it empty to read the token file", status)
        if not message:
            message = f"{error.reason or 'error'} ({status}) for {path}"
        if field:
            message = f"{message} [{field}]"
        return BackendError(message, status)


def encode_png(png: bytes | None) -> str | None:
    """PNG bytes as the base64 text the API carries (None stays None)."""
    return None if png is None else base64.b64encode(png).decode("ascii")


def job_message(job: dict[str, Any]) -> str:
    """One line for a job's state: 'running: denoising 40%' or the failure's own message."""
    status = job.get("status", "?")
    if status == "failed":
        return f"job failed: {job.get('error') or 'no reason given'}"
    if status == "interrupted":
        return "job interrupted (the backend stopped while it ran): generate again"
    if status in ("queued", "running"):
        stage = job.get("stage") or status
        return f"{stage} {round(100 * float(job.get('progress') or 0.0))}%"
    return status


class Worker:
    """Runs blocking calls in threads; their results wait in a queue for the main thread.

    ``submit`` starts ``task(emit)`` in a daemon thread. The task may call ``emit(value)`` any
    number of times; ``on_progress(value)`` then runs on the main thread. Its return value goes to
    ``on_done``, a :class:`BackendError` to ``on_error`` as its message, anything else to
    ``on_error`` as one line (the traceback goes to the log, not to the animator). No callback
    runs until the main thread calls :meth:`drain`.
    """

    def __init__(self) -> None:
        self._results: queue.SimpleQueue[tuple[Callable[..., Any], tuple]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0

    @property
    def busy(self) -> bool:
        """A task is running or a result waits to be drained."""
        with self._lock:
            return self._running > 0 or not self._results.empty()

    def submit(self, task: Callable[[Callable[[Any], None]], Any],
               on_done: Callable[[Any], None],
               on_error: Callable[[str], None],
               on_progress: Callable[[Any], None] | None = None) -> threading.Thread:
        def emit(value: Any) -> None:
            if on_progress is not None:
                self._results.put((on_progress, (value,)))

        def run() -> None:
            try:
                result = task(emit)
            except BackendError as error:
                self._results.put((on_error, (str(error),)))
            except Exception as error:
                log.exception("ShotBridge: a backend task failed")
                self._results.put((on_error, (f"unexpected error: {type(error).__name__}: "
                                              f"{error}",)))
            else:
                self._results.put((on_done, (result,)))
            finally:
                with self._lock:
                    self._running -= 1

        with self._lock:
            self._running += 1
        thread = threading.Thread(target=run, name="shotbridge-worker", daemon=True)
        thread.start()
        return thread

    def drain(self, limit: int | None = None) -> int:
        """Run the queued callbacks (main thread only); returns how many ran."""
        count = 0
        while limit is None or count < limit:
            try:
                callback, args = self._results.get_nowait()
            except queue.Empty:
                break
            count += 1
            try:
                callback(*args)
            except Exception:
                log.exception("ShotBridge: a main-thread callback failed")
        return count

    def wait_idle(self, timeout: float = 10.0, poll: float = 0.01) -> bool:
        """Block until no task runs (tests and shutdown only, never from the UI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._running == 0:
                    return True
            time.sleep(poll)
        return False


def last_line(lines: Iterable[str], default: str = "") -> str:
    """The last non-empty line of a log (what a crashed process said last)."""
    last = default
    for line in lines:
        if line.strip():
            last = line.strip()
    return last
