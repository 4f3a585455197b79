"""The FastAPI application: ``create_app(settings, generators)``.

The HTTP contract with the add-on is in the module docstring of :mod:`backend.server`; bodies are
in :mod:`backend.server.schemas`. The lifespan handler writes the token, opens the job store
(marking jobs cut off by a previous stop as interrupted), starts one worker per device and loads
the preloaded models; on shutdown it stops the workers and frees the models. Every API route
needs the bearer token; ``/docs`` and ``/openapi.json`` describe the API and hold no data, so they
open in a browser (its "Authorize" button takes the token for "Try it out").
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent

from backend import __version__
from backend.generators import Generator, GeneratorRegistry, builtin_generators
from backend.generators.weights import ModelsConfig
from backend.planning.base import Planner
from backend.server import convert as convert_module
from backend.server.errors import ApiError, DeclaredBodyLimit, install_error_handlers
from backend.server.events import JobEvents
from backend.server.lock import DataDirLock
from backend.server.runner import JobRunner, JobStateError, free_device_memory, resolve_devices
from backend.server.schemas import (
    ConvertRequest,
    ConvertResponse,
    ErrorBody,
    Health,
    Job,
    JobList,
    JobRequest,
    ModelInfo,
    PlanRequest,
    UnloadResponse,
)
from backend.server.settings import Settings, ensure_token
from backend.server.store import JobRecord, JobStore
from backend.server.validation import build_plan_request, build_request, check_model

logger = logging.getLogger("shotbridge.server")

RESUBMITTABLE = frozenset({"interrupted", "failed", "cancelled"})


@dataclass
class Service:
    """What the routes share; made by the lifespan handler, kept in ``app.state.service``."""

    settings: Settings
    token: str
    registry: GeneratorRegistry
    store: JobStore
    runner: JobRunner
    events: JobEvents
    devices: tuple[str, ...]
    planners: dict[str, Planner] = field(default_factory=dict)
    """Planners loaded so far, by name (the learned one loads its weights on first use)."""

    def planner(self, name: str) -> Planner:
        """The named planner; ApiError 503 naming the missing weights for the learned one."""
        if name not in self.planners:
            from backend.planning import get_planner  # the planners load on first use

            weights = None
            if name == "learned":
                config = ModelsConfig(self.settings.data_dir, self.settings.models_config)
                weights, source = config.folder("planner", "path")
                if not (weights / "config.json").is_file():
                    raise ApiError(503, f"the learned planner's weights are missing: no "
                                        f"config.json in {weights} ({source}); train one with "
                                        "`python -m backend train planner` and name its folder "
                                        "in models.toml under [models.planner] path (README, "
                                        "Models), or plan with the grammar planner",
                                   "body.planner")
            self.planners[name] = get_planner(name, weights)
        return self.planners[name]


# Dependencies that never block are async: a sync one would cost a thread-pool hop per request.
async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
bearer = HTTPBearer(auto_error=False, description="The token in `<data folder>/token`.")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    service: Service = request.app.state.service
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), service.token.encode()):
        raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer <token>' with "
                            f"the token from {service.settings.token_path}", None,
                       {"WWW-Authenticate": "Bearer"})


def job_body(job: JobRecord) -> Job:
    return Job(id=job.id, model=job.model, status=job.status, progress=job.progress,
               stage=job.stage, error=job.error, created_at=job.created_at,
               updated_at=job.updated_at, shots=job.shots,
               video=f"/jobs/{job.id}/video" if job.video else None)


async def get_job(job_id: str, service: ServiceDep) -> JobRecord:
    job = service.store.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id!r}", "job_id")
    return job


JobDep = Annotated[JobRecord, Depends(get_job)]


def _error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


router = APIRouter(dependencies=[Depends(require_token)], responses={
    401: _error("Missing or wrong token."), 413: _error("Body over the size limit."),
    422: _error("Malformed request; `field` names it."),
})


@router.get("/health", tags=["service"])
def health(service: ServiceDep) -> Health:
    """Version, device and every model with whether it can run now."""
    return Health(version=__version__, device=service.devices[0],
                  models=[ModelInfo(**generator.describe()) for generator in service.registry])


@router.post("/plan", tags=["planning"], responses={
    503: _error("The learned planner's weights are missing; the message says where to put them."),
})
def plan(body: PlanRequest, service: ServiceDep) -> dict[str, Any]:
    """Plan multi-shot cameras from the shot list: a ShotSequence (version 1).

    The planner's warnings (words it did not use, shots without a camera instruction) are in
    ``metadata.planner.warnings``.
    """
    request = build_plan_request(body)
    return service.planner(body.planner).plan(request).sequence.to_dict()


@router.post("/jobs", status_code=202, tags=["jobs"], responses={
    501: _error("The model's generator is not implemented yet."),
    503: _error("The model's weights are missing; the message says where to put them."),
})
def create_job(body: JobRequest, service: ServiceDep, background: BackgroundTasks) -> Job:
    """Validate, store and queue a generation job."""
    request, image_png = build_request(body, service.registry, service.devices[0])
    stored = body.model_dump(exclude={"image"})
    stored["shots"] = request.shots
    job = service.store.create(body.model, request.shots, stored, image_png)
    _queue_after_response(background, service, job.id)
    return job_body(job)


def _queue_after_response(background: BackgroundTasks, service: Service, job_id: str) -> None:
    """Hand the job to the workers once the answer is sent: a worker starting a job holds the
    GIL for a while, which would otherwise delay the answer by milliseconds."""
    background.add_task(service.runner.submit, job_id)
    background.add_task(service.runner.enforce_disk_limit, [job_id])


@router.get("/jobs", tags=["jobs"])
async def list_jobs(service: ServiceDep) -> JobList:
    """Every job, newest first."""
    return JobList(jobs=[job_body(job) for job in service.store.list()])


@router.get("/jobs/{job_id}", tags=["jobs"], responses={404: _error("No such job.")})
async def read_job(job: JobDep) -> Job:
    return job_body(job)


@router.get("/jobs/{job_id}/events", tags=["jobs"], response_class=EventSourceResponse,
            responses={404: _error("No such job.")})
async def job_events(job: JobDep, service: ServiceDep) -> AsyncIterable[ServerSentEvent]:
    """Server-sent events: ``event: job`` with the job JSON now and at every change; the stream
    ends after a terminal status."""
    with service.events.listen(job.id) as changes:
        current, sent = service.store.snapshot(job.id)
        if current is None:  # removed by the disk bound meanwhile
            return
        yield ServerSentEvent(data=job_body(current), event="job")
        while not current.terminal:
            change, version = await changes.get()
            if version > sent:  # else: already in the snapshot sent first
                current, sent = change, version
                yield ServerSentEvent(data=job_body(current), event="job")


@router.delete("/jobs/{job_id}", tags=["jobs"], responses={
    404: _error("No such job."), 409: _error("The job has already ended."),
})
def cancel_job(job: JobDep, service: ServiceDep) -> Job:
    """Cancel a queued job at once; a running one stops after its current denoising step."""
    try:
        return job_body(service.runner.cancel(job.id))
    except KeyError:
        raise ApiError(404, f"no job {job.id!r}", "job_id") from None
    except JobStateError as error:
        raise ApiError(409, str(error), "job_id") from None


@router.post("/jobs/{job_id}/resubmit", status_code=202, tags=["jobs"], responses={
    404: _error("No such job."), 409: _error("The job is not interrupted, failed or cancelled."),
    501: _error("Not implemented yet."), 503: _error("Weights missing."),
})
def resubmit_job(job: JobDep, service: ServiceDep, background: BackgroundTasks) -> Job:
    """Queue a new job with the same request as an interrupted, failed or cancelled one."""
    if job.status not in RESUBMITTABLE:
        raise ApiError(409, f"job {job.id} is {job.status}; only interrupted, failed or "
                            "cancelled jobs can be resubmitted", "job_id")
    check_model(service.registry, job.model)
    try:
        request, image_png = service.store.read_request(job.id)
    except FileNotFoundError:
        raise ApiError(409, f"job {job.id}: its request was removed (disk limit)",
                       "job_id") from None
    new = service.store.create(job.model, job.shots, request, image_png)
    _queue_after_response(background, service, new.id)
    return job_body(new)


@router.get("/jobs/{job_id}/video", tags=["jobs"], response_class=FileResponse, responses={
    200: {"content": {"video/mp4": {}}, "description": "H.264 MP4."},
    404: _error("No such job, or no video (yet)."),
})
async def job_video(job: JobDep, service: ServiceDep) -> FileResponse:
    path = service.store.job_dir(job.id) / (job.video or "")
    if job.status != "succeeded" or not job.video or not path.is_file():
        reason = "its output was removed (disk limit)" if job.status == "succeeded" else (
            f"it is {job.status}")
        raise ApiError(404, f"job {job.id} has no video: {reason}", "job_id")
    return FileResponse(path, media_type="video/mp4", filename=f"shotbridge-{job.id}.mp4",
                        content_disposition_type="inline")


@router.post("/convert", tags=["formats"])
def convert(body: ConvertRequest) -> ConvertResponse:
    """Convert a camera path between formats (the ``convert`` command over HTTP)."""
    return convert_module.convert(body)


@router.post("/models/unload", tags=["service"])
async def unload_models(service: ServiceDep) -> UnloadResponse:
    """Drop every loaded model and return GPU memory (for Cycles); they reload on demand."""

    def unload() -> list[str]:
        names = [generator.name for generator in service.registry if generator.unload()]
        free_device_memory()
        return names

    return UnloadResponse(unloaded=await run_in_threadpool(unload), device=service.devices[0])


def _preload(registry: GeneratorRegistry, names: Iterable[str], device: str) -> None:
    for name in names:
        if name not in registry:
            logger.warning("preload: no model named %r", name)
            continue
        generator = registry.get(name)
        ok, message = generator.available()
        if not (ok and generator.implemented):
            logger.info("preload: %s not loaded: %s", name, message)
            continue
        try:
            generator.load(device)
        except Exception:  # a model that fails to load must not stop the server
            logger.exception("preload: %s failed to load", name)


def create_app(settings: Settings | None = None,
               generators: Iterable[Generator] | None = None) -> FastAPI:
    """The ShotBridge backend app.

    ``settings``: data folder, disk limit, devices, preloaded models (default:
    ``Settings.from_env()``). ``generators``: the models offered (default: the built-in
    smoke-test, camera-dit and trajectory-controlnet); pass your own list to add or replace one.
    Nothing is read from disk and no model is loaded until the app starts (lifespan).
    """
    settings = settings or Settings.from_env()
    registry = GeneratorRegistry(builtin_generators(settings.data_dir, settings.models_config)
                                 if generators is None else generators)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        token = await run_in_threadpool(ensure_token, settings.data_dir)
        # Only one process may run the jobs of a data folder (the store interrupts unfinished
        # jobs when it opens): DataDirBusy stops the start with a message naming the owner.
        lock = await run_in_threadpool(DataDirLock(settings.data_dir, role="server").acquire)
        store = await run_in_threadpool(JobStore, settings.database_path, settings.jobs_dir)
        if store.interrupted:
            logger.info("%d job(s) were cut off by the last stop: marked interrupted",
                        len(store.interrupted))
        events = JobEvents(asyncio.get_running_loop())
        store.on_change = events.publish
        devices = resolve_devices(settings.devices)
        runner = JobRunner(store, registry, devices, settings.disk_limit_bytes)
        await run_in_threadpool(runner.enforce_disk_limit)
        await run_in_threadpool(_preload, registry, settings.preload, devices[0])
        app.state.service = Service(settings, token, registry, store, runner, events, devices)
        runner.start()
        try:
            yield
        finally:
            await run_in_threadpool(runner.stop)
            # Dropping the references is enough: the process is ending (no gc pass, which takes
            # most of a second with torch loaded).
            for generator in registry:
                generator.unload()
            store.close()
            lock.release()

    app = FastAPI(title="ShotBridge backend", version=__version__, lifespan=lifespan,
                  description="Local backend of the ShotBridge Blender add-on: camera-path "
                              "conversion and camera-controlled video generation jobs. Every "
                              "route needs `Authorization: Bearer <token>`.")
    install_error_handlers(app)
    app.add_middleware(DeclaredBodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(router, max_body_size=settings.max_body_bytes)
    return app
