"""The local HTTP backend the Blender add-on talks to (FastAPI + uvicorn, 127.0.0.1 by default).

Start it with ``python -m backend serve [--host 127.0.0.1] [--port 7862]``. Every request carries
``Authorization: Bearer <token>``, the token the server writes on first start to
``<data folder>/token`` (mode 0600; see :mod:`backend.server.settings` for the folder). Errors are
``{"error": message, "field": path or null}``: 401 token, 404 unknown job, 409 wrong state, 422
malformed body (the field named), 501 not implemented yet, 503 model weights missing.

========================  ====================================================================
``GET /health``           version, device, models (name, kind, available, message)
``POST /plan``            shot planning; 501 until the planner issue
``POST /jobs``            queue a generation job (202, the job)
``GET /jobs``             every job, newest first
``GET /jobs/{id}``        one job: status, progress 0..1, stage, error, video URL
``GET /jobs/{id}/events`` server-sent events (``event: job``) until a terminal status
``DELETE /jobs/{id}``     cancel (queued: at once; running: between denoising steps)
``POST /jobs/{id}/resubmit``  requeue an interrupted, failed or cancelled job
``GET /jobs/{id}/video``  the MP4 (H.264) once the job succeeded
``POST /convert``         camera-path conversion (the ``convert`` command over HTTP)
``POST /models/unload``   free loaded models and GPU memory
========================  ====================================================================
"""

from __future__ import annotations

import ipaddress

from backend.server.app import create_app
from backend.server.settings import DEFAULT_HOST, DEFAULT_PORT, Settings

__all__ = ["Settings", "create_app", "host_warning", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_warning(host: str, port: int) -> str | None:
    """The warning ``serve`` prints for an address other than the loopback interface."""
    if is_loopback(host):
        return None
    return (f"warning: serving on {host}, not the loopback interface: anyone who can reach port "
            f"{port} of this machine and has the token can run jobs, and traffic is not "
            "encrypted")


def serve(settings: Settings | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          log_level: str = "info") -> None:
    """Run the backend with uvicorn until interrupted (Ctrl+C or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level=log_level,
                            access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
