"""Service latency (issue 4): the backend's HTTP round trips against a bare FastAPI app.

Run from the repository root: ``.venv/bin/python benchmarks/service.py``. It starts two servers
on loopback, each in a process of its own with the same uvicorn settings (one worker,
``access_log=False``, log level warning):

- the ShotBridge backend, ``python -m backend serve`` (smoke-test generator, a fresh data folder);
- the baseline: a bare FastAPI app with a trivial ``GET /ping`` and a ``POST /echo`` that parses
  a JSON body of the same size as the job request (``--baseline-server``, this file).

One keep-alive ``httpx`` client in this process then times, after a warm-up of each:

- ``POST /jobs`` round trips (n=200; each job is cancelled at once with ``DELETE`` so that the
  worker stays idle) against ``POST /echo`` with the same body;
- ``GET /jobs/{id}`` status polls (n=2000) and ``GET /health`` (n=2000) against ``GET /ping``;
- ``GET /jobs/{id}`` again while a long smoke-test job is generating on the CPU.

It prints median and p99 of each, and the ratio of each p99 (and median) to its baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

UVICORN_SETTINGS: dict[str, Any] = {"log_level": "warning", "access_log": False}


def baseline_app() -> Any:
    """A bare FastAPI app: the least any endpoint on this stack costs."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo", status_code=202)
    async def echo(body: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(body)}

    return app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, headers: dict[str, str] | None = None,
                   path: str = "/ping", timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + path, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def _time(call: Callable[[], httpx.Response], n: int, warmup: int = 50) -> list[float]:
    """Seconds per round trip of ``n`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call().raise_for_status()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - start)
        response.raise_for_status()
    return times


def _stats(times: list[float]) -> tuple[float, float]:
    """(median, p99) in milliseconds; p99 by the nearest-rank rule."""
    ordered = sorted(times)
    p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-server", type=int, metavar="PORT",
                        help="(internal) serve the baseline app on PORT")
    parser.add_argument("--jobs", type=int, default=200, help="POST /jobs round trips")
    parser.add_argument("--polls", type=int, default=2000, help="status polls and health calls")
    args = parser.parse_args()
    if args.baseline_server:
        import uvicorn

        uvicorn.run(baseline_app(), host="127.0.0.1", port=args.baseline_server,
                    **UVICORN_SETTINGS)
        return

    sequence = json.loads((ROOT / "tests" / "golden" / "two_shots.json").read_text())
    body = {"model": "smoke-test", "sequence": sequence}
    with tempfile.TemporaryDirectory(prefix="shotbridge-bench-") as home:
        env = {**os.environ, "SHOTBRIDGE_HOME": home}
        ours_port, base_port = _free_port(), _free_port()
        ours = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--port",
                                 str(ours_port), "--log-level", "warning"], cwd=ROOT, env=env,
                                stderr=subprocess.DEVNULL)
        base = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(base_port)],
                                cwd=ROOT, env=env)
        try:
            ours_url, base_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{base_port}"
            _wait_until_up(base_url, base)
            while not (Path(home) / "token").is_file():
                time.sleep(0.1)
            token = (Path(home) / "token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            _wait_until_up(ours_url, ours, headers, "/health")
            results = run(httpx.Client(base_url=ours_url, headers=headers, timeout=60),
                          httpx.Client(base_url=base_url, timeout=60), body, args)
        finally:
            for process in (ours, base):
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    report(results, args, len(json.dumps(body)))


def _wait_terminal(client: httpx.Client, job_id: str) -> dict:
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.005)


def run(ours: httpx.Client, base: httpx.Client, body: dict, args: argparse.Namespace,
        ) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}

    # 1. An idle server: each job is cancelled and waited for (untimed) before the next POST.
    results["POST /echo (baseline)"] = _time(lambda: base.post("/echo", json=body), args.jobs, 20)
    times = []
    for i in range(args.jobs + 20):
        start = time.perf_counter()
        response = ours.post("/jobs", json=body)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        ours.delete(f"/jobs/{response.json()['id']}")
        _wait_terminal(ours, response.json()["id"])
        if i >= 20:
            times.append(elapsed)
    results["POST /jobs"] = times
    finished = ours.post("/jobs", json=body).json()["id"]
    _wait_terminal(ours, finished)
    for _ in range(2):  # interleaved halves, so that all three see the same machine load
        for name, call in (("GET /ping (baseline)", lambda: base.get("/ping")),
                           ("GET /jobs/{id}", lambda: ours.get(f"/jobs/{finished}")),
                           ("GET /health", lambda: ours.get("/health"))):
            results.setdefault(name, []).extend(_time(call, args.polls // 2))

    # 2. While a long smoke-test job generates on the CPU (its torch threads on every core).
    slow = {**body, "options": {"num_inference_steps": 1000, "num_frames": 33, "width": 128}}
    long_job = ours.post("/jobs", json=slow).json()["id"]
    while ours.get(f"/jobs/{long_job}").json()["progress"] == 0:
        time.sleep(0.05)

    def submit_behind() -> httpx.Response:
        response = ours.post("/jobs", json=body)
        response.raise_for_status()
        ours.delete(f"/jobs/{response.json()['id']}")  # cancelled while still queued
        return response

    for _ in range(2):
        for name, call in (
                ("GET /ping (baseline), generating", lambda: base.get("/ping")),
                ("GET /jobs/{id}, generating", lambda: ours.get(f"/jobs/{long_job}"))):
            results.setdefault(name, []).extend(_time(call, args.polls // 2))
        for name, call in (
                ("POST /echo (baseline), generating", lambda: base.post("/echo", json=body)),
                ("POST /jobs, generating", submit_behind)):
            results.setdefault(name, []).extend(_time(call, args.jobs // 2, 10))
    still = ours.get(f"/jobs/{long_job}").json()
    assert still["status"] == "running", f"the long job ended early: {still}"
    ours.delete(f"/jobs/{long_job}")
    return results


def report(results: dict[str, list[float]], args: argparse.Namespace, body_bytes: int) -> None:
    import torch

    print(f"machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, torch {torch.__version__} (CPU threads "
          f"{torch.get_num_threads()})")
    print(f"job body: {body_bytes} bytes JSON (tests/golden/two_shots.json, 2 shots)")
    baseline = {"POST /jobs": "POST /echo (baseline)", "GET /jobs/{id}": "GET /ping (baseline)",
                "GET /health": "GET /ping (baseline)",
                "GET /jobs/{id}, generating": "GET /ping (baseline), generating",
                "POST /jobs, generating": "POST /echo (baseline), generating"}
    print(f"{'request':36} {'n':>5} {'median ms':>10} {'p99 ms':>8}   vs baseline (median, p99)")
    for name, times in results.items():
        median, p99 = _stats(times)
        line = f"{name:36} {len(times):5d} {median:10.2f} {p99:8.2f}"
        if name in baseline:
            base_median, base_p99 = _stats(results[baseline[name]])
            line += f"   {median / base_median:.2f}x, {p99 / base_p99:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
