"""Workers that run jobs: one thread per device (each GPU, or the CPU), jobs in submission order.

A worker takes the oldest queued job, loads its model on its device and calls the generator. Every
progress report is written to the store (and so reaches status polls and event streams). A job
ends ``succeeded`` (video written), ``cancelled`` (``DELETE /jobs/{id}``: the generator sees
``cancelled()`` between denoising steps), ``interrupted`` (the server stopped) or ``failed`` with
the exception's message; an exception never leaves the worker, so the next job runs as usual.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence

import torch

from backend.generators import (
    GenerationCancelled,
    GenerationOptions,
    GenerationRequest,
    GeneratorRegistry,
)
from backend.generators.video import write_mp4
from backend.server.store import RESULT_NAME, VIDEO_NAME, JobRecord, JobStore
from backend.server.validation import decode_png
from backend.shots import ShotSequence

logger = logging.getLogger("shotbridge.server")

GENERATE_SHARE = 0.95
"""Part of the progress bar given to the generator; writing the video takes the rest."""


class JobStateError(Exception):
    """The job is not in a state that allows the operation (HTTP 409)."""


def resolve_devices(devices: Sequence[str] | None) -> tuple[str, ...]:
    """The given devices, else every CUDA device, else the CPU."""
    if devices:
        return tuple(devices)
    if torch.cuda.is_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return ("cpu",)


def free_device_memory() -> None:
    """Collect garbage and return cached GPU memory to the driver (Cycles shares the GPU)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class JobRunner:
    """The job queue and its worker threads."""

    def __init__(self, store: JobStore, registry: GeneratorRegistry, devices: Sequence[str],
                 disk_limit_bytes: int) -> None:
        self.store = store
        self.registry = registry
        self.devices = tuple(devices)
        self.disk_limit_bytes = disk_limit_bytes
        self._queue: deque[str] = deque()
        self._condition = threading.Condition()
        self._cancel_requested: set[str] = set()
        self._running: dict[str, str] = {}
        self._stopping = threading.Event()
        self._disk_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for device in self.devices:
            thread = threading.Thread(target=self._work, args=(device,), daemon=True,
                                      name=f"shotbridge-worker-{device}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; a running job is asked to stop and ends ``interrupted``."""
        self._stopping.set()
        with self._condition:
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s did not stop within %.0f s", thread.name, timeout)

    def submit(self, job_id: str) -> None:
        """Queue a stored ``queued`` job."""
        with self._condition:
            self._queue.append(job_id)
            self._condition.notify()

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or ask a running one to stop; KeyError, JobStateError."""
        with self._condition:
            job = self.store.update_if(job_id, {"queued"}, status="cancelled", stage="cancelled")
            if job is not None:
                if job_id in self._queue:  # not yet when DELETE races the POST that queues it
                    self._queue.remove(job_id)
                return job
            job = self.store.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.status != "running":
                raise JobStateError(f"job {job_id} is already {job.status}; nothing to cancel")
            self._cancel_requested.add(job_id)
            return self.store.update(job_id, stage="cancelling")

    def running_jobs(self) -> dict[str, str]:
        """Running job ids and their devices."""
        with self._condition:
            return dict(self._running)

    def enforce_disk_limit(self, keep: Iterable[str] = ()) -> list[str]:
        """Apply the disk bound (see :meth:`JobStore.enforce_disk_limit`)."""
        with self._disk_lock:
            return self.store.enforce_disk_limit(self.disk_limit_bytes, keep)

    # ----------------------------------------------------------------------------------------

    def _work(self, device: str) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopping.is_set():
                    self._condition.wait()
                if self._stopping.is_set():
                    return
                job_id = self._queue.popleft()
                job = self.store.update_if(job_id, {"queued"}, status="running",
                                           stage="starting")
                if job is None:  # cancelled meanwhile
                    continue
                self._running[job_id] = device
            try:
                self._run(job, device)
            except Exception:  # the store itself failed (e.g. closed at shutdown): log, go on
                logger.exception("job %s: could not record its end", job_id)
            finally:
                with self._condition:
                    self._running.pop(job_id, None)
                    self._cancel_requested.discard(job_id)

    def _request(self, job: JobRecord, device: str) -> GenerationRequest:
        request, image_png = self.store.read_request(job.id)
        return GenerationRequest(
            sequence=ShotSequence.from_dict(request["sequence"]), shots=list(job.shots),
            options=GenerationOptions(**request.get("options", {})),
            image=decode_png(image_png) if image_png is not None else None, device=device)

    def _run(self, job: JobRecord, device: str) -> None:
        job_id = job.id
        done = 0.0

        def cancelled() -> bool:
            return job_id in self._cancel_requested or self._stopping.is_set()

        def progress(fraction: float, stage: str) -> None:
            nonlocal done
            if cancelled():  # keep the "cancelling" stage visible
                return
            done = max(done, round(min(max(float(fraction), 0.0), 1.0) * GENERATE_SHARE, 4))
            self.store.update(job_id, progress=done, stage=stage)

        if job.model not in self.registry:  # a job stored by a server that offered more models
            self.store.update(job_id, status="failed", stage="failed",
                              error=f"this server offers no model {job.model!r} (models: "
                                    f"{', '.join(self.registry.names())})")
            return
        try:
            generator = self.registry.get(job.model)
            request = self._request(job, device)
            self.store.update(job_id, stage=f"loading {job.model} on {device}")
            generator.load(device)
            video = generator.generate(request, progress, cancelled)
            if cancelled():
                raise GenerationCancelled
            self.store.update(job_id, progress=GENERATE_SHARE, stage="writing video")
            folder = self.store.job_dir(job_id)
            write_mp4(video.frames, video.fps, folder / VIDEO_NAME)
            (folder / RESULT_NAME).write_text(json.dumps({
                "fps": video.fps, "num_frames": len(video.frames),
                "width": int(video.frames.shape[2]), "height": int(video.frames.shape[1]),
                "shot_ranges": [list(entry) for entry in video.shot_ranges],
            }), encoding="utf-8")
            self.store.measure(job_id)
            # This job is still "running" here, so the bound never removes its own output.
            self.enforce_disk_limit(keep=[job_id])
            self.store.update(job_id, status="succeeded", progress=1.0, stage="done",
                              video=VIDEO_NAME)
        except GenerationCancelled:
            if job_id in self._cancel_requested:
                self.store.update(job_id, status="cancelled", stage="cancelled")
            else:
                self.store.update(job_id, status="interrupted", stage="interrupted",
                                  error="the server stopped before this job finished; "
                                        "resubmit it")
        except torch.OutOfMemoryError as error:
            logger.warning("job %s ran out of memory on %s: %s", job_id, device, error)
            free_device_memory()
            self.store.update(job_id, status="failed", stage="failed",
                              error=f"out of memory on {device}: {error}. Free memory "
                                    "(POST /models/unload, close other GPU programs) or ask "
                                    "for fewer frames or a smaller size.")
        except Exception as error:
            logger.exception("job %s failed", job_id)
            self.store.update(job_id, status="failed", stage="failed",
                              error=f"{type(error).__name__}: {error}")
