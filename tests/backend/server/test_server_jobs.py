"""Jobs end to end against a real uvicorn server: progress events, the MP4, cancellation,
failures, restart and the disk bound."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import torch

from backend.server import Settings
from tests.backend.server.conftest import (
    FailingGenerator,
    SlowGenerator,
    StartServer,
    golden,
    read_events,
    submit,
    wait_for,
)


def _read_video(content: bytes, tmp_path) -> np.ndarray:
    path = tmp_path / "download.mp4"
    path.write_bytes(content)
    return iio.imread(path, plugin="FFMPEG", index=None)


def test_smoke_job_lifecycle(start_server: StartServer, data_dir, tmp_path) -> None:
    client = start_server().client()
    job = submit(client, options={"num_inference_steps": 3, "seed": 7})
    assert job["status"] == "queued" and job["progress"] == 0.0
    assert job["shots"] == ["shot_010", "shot_020"] and job["video"] is None

    events = read_events(client, job["id"])
    statuses = [event["status"] for event in events]
    progress = [event["progress"] for event in events]
    stages = [event["stage"] for event in events]
    assert statuses[-1] == "succeeded" and set(statuses[:-1]) <= {"queued", "running"}
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert all(0.0 <= value <= 1.0 for value in progress)
    # Every change is an event: each denoising step of both shots, then the video.
    steps = [f"{shot}: denoising step {i}/3" for shot in ("shot_010", "shot_020")
             for i in (1, 2, 3)]
    seen = [stage for stage in stages if "denoising" in stage]  # those after the stream began
    assert seen and seen == steps[len(steps) - len(seen):]
    assert steps[-1] in stages and stages[-2:] == ["writing video", "done"]
    final = events[-1]
    assert final["video"] == f"/jobs/{job['id']}/video" and final["error"] is None
    assert client.get(f"/jobs/{job['id']}").json() == final
    assert client.get("/jobs").json()["jobs"] == [final]
    assert read_events(client, job["id"]) == [final]  # a finished job: one event, then the end

    response = client.get(final["video"])
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    frames = _read_video(response.content, tmp_path)
    # 2 shots x 9 frames, 64 wide, 640x360's aspect at a multiple of 16 -> 32 high
    assert frames.shape == (18, 32, 64, 3)
    meta = iio.immeta(tmp_path / "download.mp4", plugin="FFMPEG")
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    result = json.loads((data_dir / "jobs" / job["id"] / "result.json").read_text())
    assert result["shot_ranges"] == [["shot_010", 0, 8], ["shot_020", 9, 17]]


def test_cancel_a_running_job(start_server: StartServer) -> None:
    slow = SlowGenerator(steps=500)
    client = start_server(extra=[slow]).client()
    job = submit(client, model="slow-test")
    assert slow.started.wait(10)
    response = client.delete(f"/jobs/{job['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "running" and response.json()["stage"] == "cancelling"
    events = read_events(client, job["id"])
    assert events[-1]["status"] == "cancelled" and events[-1]["video"] is None
    assert 0 < slow.steps_done < 500  # it stopped between steps
    response = client.delete(f"/jobs/{job['id']}")
    assert response.status_code == 409 and "already cancelled" in response.json()["error"]
    assert client.get(f"/jobs/{job['id']}/video").status_code == 404


def test_cancel_a_queued_job_and_resubmit_it(start_server: StartServer) -> None:
    slow = SlowGenerator(steps=500)
    client = start_server(extra=[slow]).client()
    first = submit(client, model="slow-test")
    second = submit(client, model="slow-test", options={"num_inference_steps": 3})
    assert slow.started.wait(10)
    response = client.delete(f"/jobs/{second['id']}")
    assert response.json()["status"] == "cancelled"  # at once: it never ran
    assert client.delete(f"/jobs/{first['id']}").status_code == 200
    wait_for(client, first["id"], "cancelled")
    response = client.post(f"/jobs/{second['id']}/resubmit")
    assert response.status_code == 202
    again = response.json()
    assert again["id"] != second["id"] and again["status"] == "queued"
    assert wait_for(client, again["id"], "succeeded")["video"]
    response = client.post(f"/jobs/{again['id']}/resubmit")
    assert response.status_code == 409 and "succeeded" in response.json()["error"]


def test_a_failing_generator_fails_alone(start_server: StartServer) -> None:
    client = start_server(extra=[
        FailingGenerator("boom-test", RuntimeError("the test generator exploded")),
        FailingGenerator("oom-test", torch.OutOfMemoryError("CUDA out of memory. Tried to "
                                                            "allocate 20.00 GiB")),
    ]).client()
    boom = submit(client, model="boom-test")
    oom = submit(client, model="oom-test")
    after = submit(client)
    failed = read_events(client, boom["id"])[-1]
    assert failed["status"] == "failed" and failed["stage"] == "failed"
    assert failed["error"] == "RuntimeError: the test generator exploded"
    failed = wait_for(client, oom["id"], "failed")
    assert failed["error"].startswith("out of memory on cpu: CUDA out of memory")
    assert "/models/unload" in failed["error"]
    assert wait_for(client, after["id"], "succeeded")["progress"] == 1.0
    assert client.get("/health").json()["status"] == "ok"


def test_restart_keeps_jobs_and_interrupts_the_running_one(start_server: StartServer,
                                                           tmp_path) -> None:
    slow = SlowGenerator(steps=500)
    server = start_server(extra=[slow])
    client = server.client()
    done = submit(client)
    wait_for(client, done["id"], "succeeded")
    video = client.get(f"/jobs/{done['id']}/video").content
    running = submit(client, model="slow-test")
    queued = submit(client)
    assert slow.started.wait(10)
    server.stop()  # the running job is asked to stop, the queued one never starts

    slow_again = SlowGenerator(steps=3)
    client = start_server(extra=[slow_again]).client()
    jobs = {job["id"]: job for job in client.get("/jobs").json()["jobs"]}
    assert list(jobs) == [queued["id"], running["id"], done["id"]]  # newest first
    assert jobs[done["id"]]["status"] == "succeeded"
    assert client.get(f"/jobs/{done['id']}/video").content == video
    for job_id in (running["id"], queued["id"]):
        assert jobs[job_id]["status"] == "interrupted"
        assert "resubmit" in jobs[job_id]["error"]
        assert read_events(client, job_id)[-1]["status"] == "interrupted"
    response = client.post(f"/jobs/{running['id']}/resubmit")
    assert response.status_code == 202
    assert wait_for(client, response.json()["id"], "succeeded")["shots"] == running["shots"]
    assert slow_again.steps_done == 3


def test_disk_limit_removes_the_oldest_outputs(start_server: StartServer, data_dir) -> None:
    sequence = golden("minimal")  # a small request: the outputs are most of a job's bytes
    server = start_server()
    client = server.client()
    probe = submit(client, sequence=sequence)
    wait_for(client, probe["id"], "succeeded")
    folder = data_dir / "jobs" / probe["id"]
    job_bytes = sum(path.stat().st_size for path in folder.iterdir())
    output_bytes = sum((folder / name).stat().st_size for name in ("video.mp4", "result.json"))
    assert output_bytes > job_bytes / 2
    server.stop()
    client.close()
    # Room for two and a half jobs: the third one's output pushes the oldest one's out.
    limit = int(job_bytes * 3.5)
    client = start_server(Settings.from_env(disk_limit_bytes=limit)).client()
    ids = [probe["id"]]
    for _ in range(3):
        ids.append(submit(client, sequence=sequence)["id"])
        wait_for(client, ids[-1], "succeeded")
    jobs = {job["id"]: job for job in client.get("/jobs").json()["jobs"]}
    assert jobs[ids[0]]["video"] is None and "disk limit" in jobs[ids[0]]["stage"]
    response = client.get(f"/jobs/{ids[0]}/video")
    assert response.status_code == 404 and "removed" in response.json()["error"]
    assert (data_dir / "jobs" / ids[0] / "request.json").is_file()  # inputs stay for now
    for job_id in ids[1:]:
        assert jobs[job_id]["video"] and client.get(f"/jobs/{job_id}/video").status_code == 200
    usage = sum(path.stat().st_size for path in (data_dir / "jobs").rglob("*") if path.is_file())
    assert usage <= limit


def test_a_tiny_disk_limit_keeps_only_the_newest_output(start_server: StartServer,
                                                        data_dir) -> None:
    client = start_server(Settings.from_env(disk_limit_bytes=1)).client()
    first = submit(client)
    wait_for(client, first["id"], "succeeded")
    assert client.get(f"/jobs/{first['id']}/video").status_code == 200  # its own is kept
    second = submit(client, sequence=golden("minimal"))
    wait_for(client, second["id"], "succeeded")
    assert client.get(f"/jobs/{second['id']}/video").status_code == 200
    assert [job["id"] for job in client.get("/jobs").json()["jobs"]] == [second["id"]]
    assert not (data_dir / "jobs" / first["id"]).exists()


def test_unload_models_then_generate_again(start_server: StartServer) -> None:
    client = start_server().client()
    first = submit(client)
    wait_for(client, first["id"], "succeeded")
    response = client.post("/models/unload")
    assert response.status_code == 200
    assert response.json() == {"unloaded": ["smoke-test"], "device": "cpu"}
    assert client.post("/models/unload").json()["unloaded"] == []
    second = submit(client)
    assert wait_for(client, second["id"], "succeeded")["video"]
    assert client.post("/models/unload").json()["unloaded"] == ["smoke-test"]
