"""Blender's side of the backend: the worker -> queue -> timer flow, jobs and the service process.

Network calls never run on Blender's main thread. Each action (health check, plan, generate,
cancel, unload) reads what it needs from the scene into plain data on the main thread, then hands
a task to :data:`worker`, which runs it in a thread with :class:`.client.Client`. The thread
touches no ``bpy``: its results and progress wait in a queue. :func:`tick`, a persistent
``bpy.app.timers`` function, drains that queue on the main thread, where the callbacks update
:data:`state` (what the panel draws), write results into the scene (planned cameras, preview
backgrounds) and tag the sidebar for redraw.

Errors only change :data:`state` (the panel's message) and raise a Blender report; the scene is
written only when a call succeeds. Job state lives here, not in the scene, for the same reason.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from . import preview, scene_io
from .client import Client, Connection, Worker, job_message, last_line
from .preferences import default_backend_python, preferences
from .scene_context import scene_context

DEFAULT_MODEL = "smoke-test"
HEALTH_INTERVAL = 3.0
"""Seconds between health checks while the ShotBridge panel is shown."""
PANEL_SEEN_FOR = 10.0
"""Health checks stop this many seconds after the panel was last drawn."""
BUSY_INTERVAL, IDLE_INTERVAL = 0.1, 0.5
STOP_TIMEOUT = 5.0
ACTIVE_STATUSES = frozenset({"submitting", "queued", "running", "downloading"})


class LinkError(Exception):
    """An action refused on the main thread before anything was sent; the message says why."""


@dataclass
class ShotJob:
    """One preview generation of one shot, as the panel shows it."""

    scene: str
    shot: str
    camera: str
    frame_start: int
    frame_end: int
    model: str
    job_id: str | None = None
    status: str = "submitting"
    """submitting, queued, running, downloading, attached, failed, cancelled, interrupted, error."""
    progress: float = 0.0
    message: str = "submitting"
    video: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass
class LinkState:
    """Everything the panel shows about the backend; changed on the main thread only."""

    health: str = "unknown"
    """unknown, ok or down."""
    health_message: str = ""
    version: str = ""
    device: str = ""
    models: list[dict[str, Any]] = field(default_factory=list)
    checking: bool = False
    last_check: float = -1e9
    panel_seen: float = -1e9
    message: str = ""
    message_is_error: bool = False
    planning: bool = False
    unloading: bool = False
    jobs: dict[tuple[str, str], ShotJob] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None


state = LinkState()
worker = Worker()
_model_items: list[tuple[str, str, str, str, int]] = []


# -- settings ---------------------------------------------------------------------------------


def connection(context: bpy.types.Context | None = None) -> Connection:
    """Port and token from the add-on preferences (defaults when it is not installed)."""
    prefs = preferences(context)
    if prefs is None:
        return Connection()
    return Connection(port=prefs.backend_port, token=prefs.backend_token.strip())


def backend_python(context: bpy.types.Context | None = None) -> str:
    prefs = preferences(context)
    chosen = bpy.path.abspath(prefs.backend_python) if prefs and prefs.backend_python else ""
    return chosen or default_backend_python()


def model_items(_self=None, _context=None) -> list[tuple[str, str, str, str, int]]:
    """Items of the model selector: the backend's models, "smoke-test" first (value 0).

    Values are a hash of the name, so that a saved choice survives a different model list.
    """
    if not _model_items:
        _set_models([])
    return _model_items


def _set_models(models: list[dict[str, Any]]) -> None:
    items = [(DEFAULT_MODEL, DEFAULT_MODEL, "Smoke test of the job path: needs no weights, its "
              "videos are noise", "NONE", 0)]
    for model in models:
        name = str(model.get("name", ""))
        description = f"{model.get('kind', '')}: {model.get('message') or 'available'}"
        icon = "NONE" if model.get("available", True) else "ERROR"
        if name == DEFAULT_MODEL:
            items[0] = (name, name, description, icon, 0)
        elif name:
            value = zlib.crc32(name.encode()) & 0x3FFFFFFF | 1
            items.append((name, name, description, icon, value))
    _model_items[:] = items  # Blender keeps pointers into this very list


# -- panel state and reports ------------------------------------------------------------------


def tag_redraw() -> None:
    """Redraw the sidebars that show ShotBridge (main thread)."""
    manager = bpy.context.window_manager
    for window in manager.windows if manager else ():
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def notify(message: str, error: bool = False) -> None:
    """Show ``message`` in the panel and as a Blender report (main thread)."""
    state.message, state.message_is_error = message, error
    # Not registered (modules imported alone): the panel message still shows.
    with contextlib.suppress(AttributeError, RuntimeError):
        bpy.ops.shotbridge.report(level="ERROR" if error else "INFO", message=message)
    tag_redraw()


def panel_drawn() -> None:
    """The panel was drawn: keep the health checks going for a while."""
    state.panel_seen = time.monotonic()


def jobs_of(scene: bpy.types.Scene) -> dict[str, ShotJob]:
    """The scene's preview jobs by shot name."""
    return {shot: job for (name, shot), job in state.jobs.items() if name == scene.name}


# -- health -----------------------------------------------------------------------------------


def check_health(conn: Connection) -> None:
    """Ask ``GET /health`` in the worker; the status light changes when the answer is drained."""
    if state.checking:
        return
    state.checking, state.last_check = True, time.monotonic()

    def done(health: dict[str, Any]) -> None:
        state.checking = False
        state.health, state.health_message = "ok", ""
        state.version, state.device = str(health.get("version", "")), str(health.get("device"))
        state.models = list(health.get("models") or [])
        _set_models(state.models)
        tag_redraw()

    def failed(message: str) -> None:
        state.checking = False
        state.health, state.health_message = "down", message
        tag_redraw()

    worker.submit(lambda emit: Client(conn).health(), done, failed)


# -- plan -------------------------------------------------------------------------------------


def plan_request(scene: bpy.types.Scene) -> dict[str, Any]:
    """The body of ``POST /plan`` from the scene: prompts and scene context (main thread)."""
    settings = scene.shotbridge
    shots = [{"name": item.name, "prompt": item.prompt.strip()} for item in settings.shots
             if item.prompt.strip()]
    if not settings.global_prompt.strip() and not shots:
        raise LinkError("Plan Shots: write a global prompt or shot prompts first")
    return {"prompt": settings.global_prompt.strip(), "shots": shots,
            "scene": scene_context(scene), "planner": settings.planner}


def plan(scene: bpy.types.Scene, conn: Connection, folder: Path,
         image_png: bytes | None = None) -> None:
    """Send the prompts; the returned ShotSequence is imported as plan cameras when drained.

    The plan is also saved under ``folder``/plans (``folder``: the user folder), so that a plan
    the scene refused (edited plan cameras) can still be imported with Import Shots.
    """
    if state.planning:
        raise LinkError("Plan Shots: a plan is on its way already")
    body = plan_request(scene)
    scene_name = scene.name
    saved = preview.preview_path(folder, scene, "plan", "shots", ".json", subfolder="plans")

    def task(emit) -> dict[str, Any]:
        return Client(conn).plan(body["prompt"], body["shots"], body["scene"], image_png,
                                 body["planner"])

    def done(data: dict[str, Any]) -> None:
        state.planning = False
        target = bpy.data.scenes.get(scene_name)
        if target is None:
            notify(f"Plan Shots: the scene {scene_name!r} is gone", error=True)
            return
        try:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(data) + "\n")
        except OSError:
            pass  # keeping a copy is a convenience; the import goes on
        try:
            report = scene_io.import_sequence(target, data)
        except scene_io.SceneError as error:
            notify(f"Plan Shots: {error} (the plan is in {saved})", error=True)
            return
        _undo_push("ShotBridge: Plan Shots")
        notify(f"Plan Shots: {report.summary()}")

    def failed(message: str) -> None:
        state.planning = False
        notify(f"Plan Shots: {message}", error=True)

    state.planning = True
    worker.submit(task, done, failed)
    tag_redraw()


def _undo_push(message: str) -> None:
    with contextlib.suppress(RuntimeError):  # no undo stack in background mode
        bpy.ops.ed.undo_push(message=message)


# -- generate ---------------------------------------------------------------------------------


def model_frame_count(shot_frames: int) -> int:
    """Frames to ask for: the shot's length rounded up to 4k + 1.

    The video models (Wan family) compress time 4x after the first frame and take 4k + 1 frames
    only; asking for the shot's own length (rounded up by at most 3) keeps the clip, which plays
    one video frame per scene frame behind the camera, in step with the shot.
    """
    return 4 * math.ceil((max(shot_frames, 1) - 1) / 4) + 1


def generation_options(scene: bpy.types.Scene, shot: scene_io.ShotSpec) -> dict[str, Any]:
    """``options`` of ``POST /jobs``: seed, steps, and about one video frame per shot frame."""
    settings = scene.shotbridge
    options: dict[str, Any] = {
        "seed": settings.seed, "width": None, "height": None,
        "num_frames": model_frame_count(shot.frame_end - shot.frame_start + 1)}
    if settings.steps > 0:
        options["num_inference_steps"] = settings.steps
    return options


def generate(scene: bpy.types.Scene, shot_names: list[str] | None, conn: Connection,
             folder: Path, images: dict[str, bytes] | None = None) -> list[ShotJob]:
    """Queue one generation job per shot (all shots for None); previews attach when drained.

    ``images``: first-frame PNGs by shot name (the image condition). Raises
    :class:`.scene_io.SceneError` or :class:`LinkError` before anything is sent.
    """
    shots = scene_io.read_shots(scene)
    if shot_names is not None:
        missing = sorted(set(shot_names) - {s.name for s in shots})
        if missing:
            raise LinkError(f"Generate Preview: no shot named {', '.join(missing)}")
        shots = [s for s in shots if s.name in shot_names]
    busy = [s.name for s in shots if (job := state.jobs.get((scene.name, s.name))) and job.active]
    if busy:
        raise LinkError(f"Generate Preview: {', '.join(busy)} is being generated already")
    sequence = scene_io.export_sequence(scene)
    model = scene.shotbridge.model or DEFAULT_MODEL
    jobs = []
    for shot in shots:
        job = ShotJob(scene.name, shot.name, shot.camera.name, shot.frame_start, shot.frame_end,
                      model)
        path = preview.preview_path(folder, scene, shot.name, "generated")
        image = (images or {}).get(shot.name)
        options = generation_options(scene, shot)
        state.jobs[(scene.name, shot.name)] = job
        _submit_generation(job, conn, sequence, image, options, path)
        jobs.append(job)
    tag_redraw()
    return jobs


def _submit_generation(job: ShotJob, conn: Connection, sequence: dict[str, Any],
                       image: bytes | None, options: dict[str, Any], path: Path) -> None:
    cancel, shot, model = job.cancel, job.shot, job.model  # the thread sees only these

    def task(emit) -> dict[str, Any]:
        client = Client(conn)
        submitted = client.submit_job(model, sequence, [shot], image, options)
        emit(submitted)
        final = client.wait_for_job(submitted["id"], emit, cancel=cancel)
        if final.get("status") != "succeeded":
            return final
        emit({**final, "status": "downloading"})
        client.download_video(final["id"], path)
        return {**final, "path": str(path)}

    def progress(update: dict[str, Any]) -> None:
        job.job_id = update.get("id", job.job_id)
        job.status = update.get("status", job.status)
        job.progress = float(update.get("progress") or 0.0)
        job.message = ("downloading the video" if job.status == "downloading"
                       else job_message(update))
        tag_redraw()

    def done(final: dict[str, Any]) -> None:
        progress(final)
        if "path" not in final:
            notify(f"Generate Preview: {shot}: {job.message}",
                   error=job.status in ("failed", "interrupted"))
            return
        job.video = Path(final["path"])
        attach_generated(job)

    def failed(message: str) -> None:
        job.status, job.message = "error", message
        notify(f"Generate Preview: {shot}: {message}", error=True)

    worker.submit(task, done, failed, progress)


def attach_generated(job: ShotJob) -> None:
    """Put a downloaded video behind its shot camera (main thread)."""
    scene = bpy.data.scenes.get(job.scene)
    camera = bpy.data.objects.get(job.camera)
    if scene is None or camera is None or camera.type != "CAMERA":
        job.status, job.message = "error", f"camera {job.camera!r} is gone; video in {job.video}"
        notify(f"Generate Preview: {job.shot}: {job.message}", error=True)
        return
    try:
        preview.attach_preview(scene, camera, job.video, job.shot, job.frame_start,
                               job.frame_end, "generated")
    except preview.PreviewError as error:
        job.status, job.message = "error", str(error)
        notify(f"Generate Preview: {job.shot}: {error}", error=True)
        return
    job.status, job.progress, job.message = "attached", 1.0, "preview attached"
    notify(f"Generate Preview: {job.shot}: preview attached to {camera.name}")


def cancel(scene_name: str, shot: str) -> bool:
    """Cancel the shot's job: the worker sends ``DELETE /jobs/{id}`` and reports the end."""
    job = state.jobs.get((scene_name, shot))
    if job is None or not job.active:
        return False
    job.cancel.set()
    job.message = "cancelling"
    tag_redraw()
    return True


def unload(conn: Connection) -> None:
    """``POST /models/unload`` in the worker."""

    def done(answer: dict[str, Any]) -> None:
        state.unloading = False
        names = ", ".join(answer.get("unloaded") or []) or "no model was loaded"
        notify(f"Free GPU Memory: {names} ({answer.get('device', '?')})")

    def failed(message: str) -> None:
        state.unloading = False
        notify(f"Free GPU Memory: {message}", error=True)

    state.unloading = True
    worker.submit(lambda emit: Client(conn).unload_models(), done, failed)


# -- the backend process ----------------------------------------------------------------------


def backend_process_running() -> bool:
    return state.process is not None and state.process.poll() is None


def start_backend(python: str, port: int, folder: Path) -> subprocess.Popen:
    """Start ``<python> -m backend serve --port <port>``, its output in ``folder``/backend.log."""
    if backend_process_running():
        raise LinkError(f"the backend started from Blender is running (process "
                        f"{state.process.pid})")
    if not python or not Path(python).is_file():
        raise LinkError("no backend Python: set Backend Python in the add-on preferences to the "
                        ".venv Python that install.py made")
    root = Path(python).parent.parent.parent  # <checkout>/.venv/bin/python
    cwd = root if (root / "backend" / "__init__.py").exists() else folder
    folder.mkdir(parents=True, exist_ok=True)
    state.log_path = folder / "backend.log"
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        with state.log_path.open("ab") as log:
            state.process = subprocess.Popen(
                [python, "-m", "backend", "serve", "--port", str(port)], cwd=cwd,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, creationflags=flags)
    except OSError as error:
        raise LinkError(f"cannot start {python}: {error}") from None
    state.health, state.health_message = "unknown", "starting"
    state.last_check = -1e9
    state.panel_seen = time.monotonic()
    tag_redraw()
    return state.process


def stop_backend(wait: bool = True) -> bool:
    """Stop the backend this Blender started (never one started elsewhere)."""
    process, state.process = state.process, None
    if process is None or process.poll() is not None:
        return False
    process.terminate()

    def finish(_emit=None) -> None:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    if wait:
        finish()
    else:
        worker.submit(finish, lambda _: None, lambda _: None)
    state.health, state.health_message = "down", "stopped"
    tag_redraw()
    return True


def _watch_process() -> bool:
    process = state.process
    if process is None or process.poll() is None:
        return False
    state.process = None
    said = ""
    if state.log_path is not None and state.log_path.exists():
        with state.log_path.open(errors="replace") as log:
            said = last_line(log)
    notify(f"the backend exited (code {process.returncode})" + (f": {said}" if said else ""),
           error=True)
    return True


# -- the timer --------------------------------------------------------------------------------


def tick() -> float:
    """The ``bpy.app.timers`` function: drain results, check health while the panel shows."""
    changed = worker.drain() > 0
    changed = _watch_process() or changed
    now = time.monotonic()
    watched = now - state.panel_seen < PANEL_SEEN_FOR or backend_process_running()
    if watched and not state.checking and now - state.last_check >= HEALTH_INTERVAL:
        check_health(connection())
    if changed:
        tag_redraw()
    return BUSY_INTERVAL if worker.busy else IDLE_INTERVAL


def _stop_at_exit() -> None:
    stop_backend(wait=True)


def register() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=IDLE_INTERVAL, persistent=True)
    atexit.register(_stop_at_exit)


def reset_state() -> None:
    """Cancel the running jobs and forget jobs, messages and health (the process stays)."""
    global state
    for job in state.jobs.values():
        job.cancel.set()
    state = LinkState(process=state.process, log_path=state.log_path)


def unregister() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    atexit.unregister(_stop_at_exit)
    stop_backend(wait=True)
    reset_state()
