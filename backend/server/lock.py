"""One process at a time owns a data folder's job store: the server, or a local ``generate``.

The job store marks every unfinished job "interrupted" when it opens (they were cut off by the last
stop), which is only right when nobody else is running them. An advisory lock on
``<data_dir>/owner.lock`` makes that true; the lock file also says who holds it, for the message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType

LOCK_NAME = "owner.lock"

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(handle) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


class DataDirBusy(RuntimeError):
    """Another process owns the data folder; the message says which and what to do."""


def describe_owner(data_dir: Path) -> dict | None:
    """Who last took the lock (pid, role, address), or None when nobody ever did."""
    try:
        return json.loads((data_dir / LOCK_NAME).read_text() or "null")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class DataDirLock:
    """Hold the data folder for this process: ``with DataDirLock(folder, role="server")``."""

    def __init__(self, data_dir: Path, role: str, **details: object) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.owner = {"pid": os.getpid(), "role": role, **details}
        self._handle = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        if not _try_lock(handle):
            handle.close()
            owner = describe_owner(self.path.parent) or {}
            who = (f"a ShotBridge {owner.get('role', 'process')} (pid {owner.get('pid', '?')}"
                   + (f", port {owner['port']}" if "port" in owner else "") + ")")
            raise DataDirBusy(f"{who} is using the data folder {self.path.parent}; stop it, "
                              "send the job to that server, or use another --data-dir")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(self.owner))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()
