"""Delivering job changes to server-sent event streams.

Jobs change on worker threads; streams wait on the event loop. :meth:`JobEvents.publish` (the
store's ``on_change``) may be called from any thread and hands each new state to the loop with
``call_soon_threadsafe``, into one queue per open stream, so a stream sends every change in order.
A stream registers before it reads the job's current state and skips queued states that are not
newer than what it has sent (by the store's change counter), so it neither misses nor repeats one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from backend.server.store import JobRecord

JobChange = tuple[JobRecord, int]
"""A job's state and its change counter."""


class JobEvents:
    """Per-job queues of changes for the streams of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[str, set[asyncio.Queue[JobChange]]] = {}

    def publish(self, job: JobRecord, version: int) -> None:
        """Hand a change to every stream of ``job``; safe from any thread."""
        # Read without the loop: a stream that registers just after this check reads the job
        # after registering, so it still sees this change.
        if job.id in self._queues:
            # RuntimeError: the loop has closed, so nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._deliver, job, version)

    def _deliver(self, job: JobRecord, version: int) -> None:
        for queue in self._queues.get(job.id, ()):
            queue.put_nowait((job, version))

    @contextlib.contextmanager
    def listen(self, job_id: str) -> Iterator[asyncio.Queue[JobChange]]:
        """A queue that receives every later change of ``job_id``; use on the loop's thread."""
        queue: asyncio.Queue[JobChange] = asyncio.Queue()
        self._queues.setdefault(job_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues.get(job_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._queues[job_id]
