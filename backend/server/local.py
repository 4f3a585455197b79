"""Jobs without a server: ``python -m backend generate`` and ``jobs`` on the server's own parts.

A local job goes through exactly what ``POST /jobs`` does — :func:`build_request`, the
:class:`JobStore` in the data folder, a :class:`JobRunner` worker — so its checks, progress stages,
stored request and MP4 are the server's. The data folder is held with :class:`DataDirLock` for the
job's duration, so a local job never races a running server over the same store.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from backend.generators import builtin_generators
from backend.generators.base import Generator, GeneratorRegistry
from backend.server.lock import DataDirLock
from backend.server.runner import JobRunner, resolve_devices
from backend.server.schemas import JobRequest
from backend.server.settings import Settings
from backend.server.store import VIDEO_NAME, JobRecord, JobStore, read_jobs
from backend.server.validation import build_request


def run_job(settings: Settings, body: JobRequest, output: Path,
            on_change: Callable[[JobRecord], None] | None = None,
            generators: list[Generator] | None = None) -> JobRecord:
    """Run one job to its end in this process; copies the MP4 to ``output`` when it succeeds.

    ``on_change(job)`` sees every progress update (from the worker thread). Raises
    :class:`~backend.server.lock.DataDirBusy` when a server holds the data folder, and the
    server's own :class:`~backend.server.errors.ApiError` for a request it would refuse.
    """
    registry = GeneratorRegistry(builtin_generators(settings.data_dir, settings.models_config)
                                 if generators is None else generators)
    with DataDirLock(settings.data_dir, role="generate command"):
        store = JobStore(settings.database_path, settings.jobs_dir)
        finished = threading.Event()

        def changed(job: JobRecord, version: int) -> None:
            if on_change is not None:
                on_change(job)
            if job.terminal:
                finished.set()

        devices = resolve_devices(settings.devices)
        runner = JobRunner(store, registry, devices, settings.disk_limit_bytes)
        try:
            request, image_png = build_request(body, registry, devices[0])
            stored = body.model_dump(exclude={"image"})
            stored["shots"] = request.shots
            job = store.create(body.model, request.shots, stored, image_png)
            store.on_change = changed
            runner.start()
            runner.submit(job.id)
            try:
                while not finished.wait(0.2):
                    pass
            except KeyboardInterrupt:
                runner.cancel(job.id)
                finished.wait()
            job = store.get(job.id)
            if job.status == "succeeded":
                output.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(store.job_dir(job.id) / VIDEO_NAME, output)
            return job
        finally:
            runner.stop()
            for generator in registry:
                generator.unload()
            store.close()


def list_jobs(settings: Settings) -> list[JobRecord]:
    """Every stored job, newest first, read-only: safe while a server runs."""
    return read_jobs(settings.database_path)
