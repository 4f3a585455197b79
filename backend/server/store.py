"""Jobs on disk: one SQLite table (stdlib ``sqlite3``) and one folder per job.

Layout under the data folder::

    jobs.sqlite3            one row per job (status, progress, stage, error, times, shots, video)
    jobs/<id>/request.json  the request as submitted, without the image
    jobs/<id>/image.png     the first-frame image, when given
    jobs/<id>/video.mp4     the output, once the job succeeded
    jobs/<id>/result.json   fps, size and each shot's frame range in the video

The rows are also kept in memory, so status reads never touch the disk; every change is written
through before it is visible. Jobs found ``queued`` or ``running`` when the store opens were cut
off by a stop or crash: they become ``interrupted`` and can be resubmitted.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.server.schemas import TERMINAL_STATUSES

REQUEST_NAME = "request.json"
IMAGE_NAME = "image.png"
VIDEO_NAME = "video.mp4"
RESULT_NAME = "result.json"
OUTPUT_NAMES = (VIDEO_NAME, RESULT_NAME)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    stage TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    shots TEXT NOT NULL,
    video TEXT
)
"""
_COLUMNS = ("id", "model", "status", "progress", "stage", "error", "created_at", "updated_at",
            "shots", "video")


@dataclass
class JobRecord:
    """One job as stored; ``video`` is the output's file name inside the job folder."""

    id: str
    model: str
    status: str
    progress: float
    stage: str
    error: str | None
    created_at: float
    updated_at: float
    shots: list[str] = field(default_factory=list)
    video: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def row(self) -> tuple[Any, ...]:
        values = dataclasses.asdict(self)
        values["shots"] = json.dumps(self.shots)
        return tuple(values[column] for column in _COLUMNS)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> JobRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["shots"] = json.loads(values["shots"])
        return cls(**values)


def read_jobs(database: Path) -> list[JobRecord]:
    """Every job in ``database``, newest first, opened read-only (safe beside a running server)."""
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs").fetchall()
    return sorted((JobRecord.from_row(row) for row in rows), key=lambda job: job.created_at,
                  reverse=True)


class JobStore:
    """Thread-safe job table and folders.

    ``on_change(job, version)`` is called after every creation or update with a copy of the job
    as it then was and its change counter, from the thread that made the change.
    """

    def __init__(self, database: Path, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        columns = ", ".join(_COLUMNS)
        self._jobs = {row[0]: JobRecord.from_row(row)
                      for row in self._db.execute(f"SELECT {columns} FROM jobs")}
        self._versions = dict.fromkeys(self._jobs, 0)
        self._remove_orphans()
        # Bytes per job folder, kept up to date so the disk bound never walks the whole tree.
        self._sizes = {job_id: _folder_size(self.job_dir(job_id)) for job_id in self._jobs}
        self.on_change: Callable[[JobRecord, int], None] | None = None
        self.interrupted = self._interrupt_unfinished()

    def _remove_orphans(self) -> None:
        """Folders without a row: left by a crash between writing the request and the row."""
        for folder in self.jobs_dir.iterdir():
            if folder.is_dir() and folder.name not in self._jobs:
                shutil.rmtree(folder, ignore_errors=True)

    def _interrupt_unfinished(self) -> list[str]:
        cut_off = [job.id for job in self._jobs.values() if not job.terminal]
        for job_id in cut_off:
            self.update(job_id, status="interrupted", stage="interrupted",
                        error="the server stopped before this job finished; resubmit it")
        return cut_off

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ----------------------------------------------------------------------------------------
    # Reading

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def get(self, job_id: str) -> JobRecord | None:
        """A copy of the job, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return dataclasses.replace(job) if job else None

    def snapshot(self, job_id: str) -> tuple[JobRecord | None, int]:
        """A copy of the job and its change counter (which grows with every change)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return (dataclasses.replace(job) if job else None), self._versions.get(job_id, -1)

    def list(self) -> list[JobRecord]:
        """Every job, newest first."""
        with self._lock:
            jobs = [dataclasses.replace(job) for job in self._jobs.values()]
        return sorted(jobs, key=lambda job: job.created_at, reverse=True)

    def read_request(self, job_id: str) -> tuple[dict[str, Any], bytes | None]:
        """The stored request JSON and image bytes (None without an image)."""
        folder = self.job_dir(job_id)
        request = json.loads((folder / REQUEST_NAME).read_text(encoding="utf-8"))
        image = folder / IMAGE_NAME
        return request, image.read_bytes() if image.is_file() else None

    # ----------------------------------------------------------------------------------------
    # Writing

    def create(self, model: str, shots: list[str], request: dict[str, Any],
               image_png: bytes | None = None) -> JobRecord:
        """A new queued job with its request (and image) written to its folder."""
        now = time.time()
        job = JobRecord(id=uuid.uuid4().hex, model=model, status="queued", progress=0.0,
                        stage="queued", error=None, created_at=now, updated_at=now,
                        shots=list(shots))
        folder = self.job_dir(job.id)
        folder.mkdir(parents=True)
        data = json.dumps(request).encode()
        (folder / REQUEST_NAME).write_bytes(data)
        if image_png is not None:
            (folder / IMAGE_NAME).write_bytes(image_png)
        with self._lock:
            self._db.execute(f"INSERT INTO jobs VALUES ({', '.join('?' * len(_COLUMNS))})",
                             job.row())
            self._jobs[job.id] = job
            self._versions[job.id] = 0
            self._sizes[job.id] = len(data) + len(image_png or b"")
        self._notify(job, 0)
        return dataclasses.replace(job)

    def update(self, job_id: str, **changes: Any) -> JobRecord:
        """Change fields of a job (``updated_at`` follows); KeyError for an unknown job."""
        job = self.update_if(job_id, None, **changes)
        if job is None:
            raise KeyError(f"no job {job_id!r}")
        return job

    def update_if(self, job_id: str, statuses: Iterable[str] | None,
                  **changes: Any) -> JobRecord | None:
        """Like :meth:`update`, only when the job's status is one of ``statuses`` (any when
        None), checked and changed under one lock; None when it is not (or no such job)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or (statuses is not None and job.status not in set(statuses)):
                return None
            job = dataclasses.replace(job, **changes, updated_at=time.time())
            assignments = ", ".join(f"{column} = ?" for column in _COLUMNS[1:])
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?",
                             (*job.row()[1:], job_id))
            self._jobs[job_id] = job
            self._versions[job_id] += 1
            version = self._versions[job_id]
        self._notify(job, version)
        return dataclasses.replace(job)

    def delete(self, job_id: str) -> None:
        """Forget a job and remove its folder."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            self._jobs.pop(job_id, None)
            self._versions.pop(job_id, None)
            self._sizes.pop(job_id, None)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def _notify(self, job: JobRecord, version: int) -> None:
        if self.on_change is not None:
            self.on_change(dataclasses.replace(job), version)

    # ----------------------------------------------------------------------------------------
    # Disk bound

    def disk_usage(self) -> int:
        """Bytes in every job folder (as last measured by :meth:`measure`)."""
        with self._lock:
            return sum(self._sizes.values())

    def measure(self, job_id: str) -> int:
        """Measure a job folder again after files were written to it; returns its size."""
        size = _folder_size(self.job_dir(job_id))
        with self._lock:
            if job_id in self._sizes:
                self._sizes[job_id] = size
        return size

    def enforce_disk_limit(self, limit: int, keep: Iterable[str] = ()) -> list[str]:
        """Free space until the job folders fit in ``limit`` bytes; returns the jobs touched.

        The outputs (video, result) of the oldest finished jobs go first; if that is not enough,
        whole finished jobs, oldest first. Unfinished jobs and those in ``keep`` are never
        touched.
        """
        touched: list[str] = []
        if self.disk_usage() <= limit:
            return touched
        keep = set(keep)
        candidates = [job for job in reversed(self.list())
                      if job.terminal and job.id not in keep]
        for job in candidates:
            if self.disk_usage() <= limit:
                return touched
            outputs = [self.job_dir(job.id) / name for name in OUTPUT_NAMES]
            if not any(path.is_file() for path in outputs):
                continue
            for path in outputs:
                path.unlink(missing_ok=True)
            self.measure(job.id)
            self.update(job.id, video=None,
                        stage=f"{job.stage}; output removed to stay under the disk limit")
            touched.append(job.id)
        for job in candidates:
            if self.disk_usage() <= limit:
                break
            self.delete(job.id)
            touched.append(job.id)
        return touched


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
