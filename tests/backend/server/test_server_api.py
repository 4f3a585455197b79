"""The HTTP API against a real uvicorn server: token, health, docs, malformed bodies, plan,
convert."""

from __future__ import annotations

import base64
import copy
import io
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from backend.camera.formats import realestate10k
from backend.server import Settings
from backend.shots import ShotSequence
from tests.backend.server.conftest import StartServer, golden, submit, wait_for
from tests.conftest import PEER_POSES


@pytest.fixture
def server(start_server: StartServer):
    return start_server()


def test_every_route_needs_the_token(server) -> None:
    job = submit(server.client())
    routes = [("GET", "/health"), ("GET", "/jobs"), ("GET", f"/jobs/{job['id']}"),
              ("GET", f"/jobs/{job['id']}/events"), ("GET", f"/jobs/{job['id']}/video"),
              ("DELETE", f"/jobs/{job['id']}"), ("POST", f"/jobs/{job['id']}/resubmit"),
              ("POST", "/jobs"), ("POST", "/plan"), ("POST", "/convert"),
              ("POST", "/models/unload")]
    for token in ("", "wrong-token", server.token + "x"):
        client = server.client(token=token)
        for method, path in routes:
            response = client.request(method, path, json={})
            assert response.status_code == 401, (token, method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            assert body["field"] is None and "token" in body["error"]
            assert str(server.settings.token_path) in body["error"]
    assert server.client(token="").get("/health", headers={
        "Authorization": f"Basic {server.token}"}).status_code == 401
    assert server.client().get("/health").status_code == 200


def test_token_file_is_private_and_stable(start_server: StartServer, data_dir) -> None:
    server = start_server()
    path = data_dir / "token"
    token = server.token
    assert len(token) >= 32
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
        assert data_dir.stat().st_mode & 0o077 == 0
    server.stop()
    again = start_server()
    assert again.token == token and again.client().get("/health").status_code == 200


def test_health_lists_the_models(server) -> None:
    health = server.client().get("/health").json()
    assert health["status"] == "ok" and health["version"] == "0.1.0"
    assert health["device"] == "cpu"
    models = {model["name"]: model for model in health["models"]}
    assert list(models) == ["smoke-test", "camera-dit", "trajectory-controlnet"]
    smoke = models["smoke-test"]
    assert smoke["kind"] == "smoke-test" and smoke["available"] is True
    assert "random weights" in smoke["message"] and "not a real model" in smoke["message"]
    for name in ("camera-dit", "trajectory-controlnet"):
        assert models[name]["kind"] == name and models[name]["available"] is False
        assert "missing" in models[name]["message"]


def test_openapi_page(server) -> None:
    client = server.client(token="")
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/plan", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/events",
            "/jobs/{job_id}/resubmit", "/jobs/{job_id}/video", "/convert",
            "/models/unload"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "JobRequest" in schema["components"]["schemas"]


def _png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    return base64.b64encode(buffer.getvalue()).decode()


def _bad_c2w() -> dict:
    sequence = golden()
    sequence["shots"][1]["c2w"][2] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    return sequence


def _nan_K() -> dict:
    sequence = golden()
    sequence["shots"][0]["K"][0][0] = -5.0
    return sequence


MALFORMED = [
    ({"sequence": golden()}, "body.model", "Field required"),
    ({"model": "smoke-test"}, "body.sequence", "Field required"),
    ({"model": "no-such-model", "sequence": golden()}, "body.model", "'no-such-model'"),
    ({"model": "smoke-test", "sequence": [1, 2]}, "body.sequence", "dictionary"),
    ({"model": "smoke-test", "sequence": _bad_c2w()}, "shots[1].c2w", "shape"),
    ({"model": "smoke-test", "sequence": _nan_K()}, "shots[0].K[0]", "fx"),
    ({"model": "smoke-test", "sequence": {**golden(), "version": 2}}, "version", "version"),
    ({"model": "smoke-test", "sequence": golden(), "shots": ["shot_010", "shot_999"]},
     "body.shots[1]", "shot_999"),
    ({"model": "smoke-test", "sequence": golden(), "shots": []}, "body.shots", "at least 1"),
    ({"model": "smoke-test", "sequence": golden(), "image": "not base64 at all!"},
     "body.image", "base64"),
    ({"model": "smoke-test", "sequence": golden(), "image": base64.b64encode(b"GIF89a").decode()},
     "body.image", "PNG"),
    ({"model": "smoke-test", "sequence": golden(), "options": {"num_frames": 10}},
     "body.options.num_frames", "4k+1"),
    ({"model": "smoke-test", "sequence": golden(), "options": {"width": 40}},
     "body.options.width", "multiple of 16"),
    ({"model": "smoke-test", "sequence": golden(), "options": {"seed": -1}},
     "body.options.seed", "greater than or equal"),
    ({"model": "smoke-test", "sequence": golden(), "colour": "red"}, "body.colour", "Extra"),
]


@pytest.mark.parametrize(("body", "field", "fragment"), MALFORMED,
                         ids=[case[1] + "-" + case[2] for case in MALFORMED])
def test_malformed_job_bodies_name_the_field(server, body, field, fragment) -> None:
    response = server.client().post("/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert set(error) == {"error", "field"}
    assert error["field"] == field
    assert fragment in error["error"]
    assert "Traceback" not in response.text
    assert server.client().get("/jobs").json()["jobs"] == []


def test_invalid_json_and_unknown_routes(server) -> None:
    client = server.client()
    response = client.post("/jobs", content=b'{"model": ', headers={
        "content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["field"] == "body" and "JSON" in response.json()["error"]
    response = client.get("/jobs/0123456789abcdef")
    assert response.status_code == 404 and response.json() == {
        "error": "no job '0123456789abcdef'", "field": "job_id"}
    assert client.get("/jobs/0123456789abcdef/events").status_code == 404
    assert client.get("/nowhere").json() == {"error": "Not Found", "field": None}


def test_job_with_an_image_stores_its_inputs(server, data_dir) -> None:
    image = np.zeros((24, 40, 4), np.uint8)
    image[..., 0], image[..., 3] = 200, 255
    encoded = _png_base64(image)
    job = submit(server.client(), image=encoded, shots=["shot_020"])
    folder = data_dir / "jobs" / job["id"]
    assert (folder / "image.png").read_bytes() == base64.b64decode(encoded)
    stored = (folder / "request.json").read_text()
    assert '"shots": ["shot_020"]' in stored and "image" not in stored
    assert job["shots"] == ["shot_020"]


def test_camera_dit_without_weights_is_503_naming_the_path(server, data_dir) -> None:
    response = server.client().post("/jobs", json={"model": "camera-dit", "sequence": golden()})
    assert response.status_code == 503
    error = response.json()
    assert error["field"] == "body.model"
    assert str(data_dir / "models" / "camera-dit" / "base") in error["error"]
    assert "model_index.json" in error["error"] and "models.toml" in error["error"]


def _fake_weights(folder, files) -> None:
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


def test_camera_dit_weights_are_checked_then_loaded(start_server: StartServer, data_dir,
                                                   tmp_path, monkeypatch) -> None:
    wan, encoder = tmp_path / "wan", tmp_path / "encoder"
    _fake_weights(wan, ["model_index.json", "scheduler/scheduler_config.json",
                        "tokenizer/tokenizer.json"] + [
        f"{part}/{name}" for part in ("transformer", "vae", "text_encoder")
        for name in ("config.json", "diffusion_pytorch_model.safetensors")])
    data_dir.mkdir(parents=True)
    (data_dir / "models.toml").write_text(f'[models.camera-dit]\npath = "{wan}"\n')
    monkeypatch.setenv("SHOTBRIDGE_CAMERA_DIT_CAMERA_ENCODER", str(encoder))
    server = start_server()
    client = server.client()
    response = client.post("/jobs", json={"model": "camera-dit", "sequence": golden()})
    assert response.status_code == 503
    assert f"camera_encoder = {encoder} (from $SHOTBRIDGE_CAMERA_DIT_CAMERA_ENCODER)" in (
        response.json()["error"])
    # Every file is there now, but empty: the job is taken, loading the weights fails with a
    # message, and the server keeps serving.
    _fake_weights(encoder, ["config.json", "diffusion_pytorch_model.safetensors"])
    camera_dit = client.get("/health").json()["models"][1]
    assert camera_dit["available"] is True and camera_dit["name"] == "camera-dit"
    response = client.post("/jobs", json={"model": "camera-dit", "sequence": golden()})
    assert response.status_code == 202, response.text
    job = wait_for(client, response.json()["id"], {"failed", "succeeded"}, timeout=120)
    assert job["status"] == "failed" and job["error"]
    assert "Traceback" not in job["error"]
    assert client.get("/health").status_code == 200


def test_plan_returns_a_shot_sequence_with_the_planners_warnings(server) -> None:
    client = server.client()
    scene = {"fps": 25, "resolution": [640, 360], "frame_start": 10,
             "subjects": [{"name": "Fountain", "position": [2.0, 1.0, 0.0],
                           "bbox_min": [1.0, 0.0, 0.0], "bbox_max": [3.0, 2.0, 1.5]}]}
    body = {"prompt": "A quiet square at dawn.", "scene": scene,
            "shots": [{"prompt": "wide shot, slowly push in"},
                      {"prompt": "go around the fountain", "name": "orbit"}]}
    response = client.post("/plan", json=body)
    assert response.status_code == 200, response.text
    plan = ShotSequence.from_dict(response.json())
    assert [shot.name for shot in plan.shots][1] == "orbit"
    assert plan.fps == 25 and plan.resolution == (640, 360) and plan.shots[0].frame_start == 10
    assert plan.prompt == "A quiet square at dawn."
    assert [shot.prompt for shot in plan.shots] == ["wide shot, slowly push in",
                                                    "go around the fountain"]
    assert plan.metadata["planner"]["name"] == "grammar"
    assert client.post("/plan", json=body).json() == response.json()  # deterministic


def test_plan_refusals_name_the_field(server) -> None:
    client = server.client()
    response = client.post("/plan", json={"prompt": "x", "shots": [], "planner": "grammar"})
    assert response.status_code == 422 and response.json()["field"] == "body.shots"
    bad_scene = {"subjects": [{"name": "Hero", "position": [0, "up", 0]}]}
    response = client.post("/plan", json={"prompt": "x", "shots": [{"prompt": "pan left"}],
                                          "scene": bad_scene})
    assert response.status_code == 422
    assert response.json()["field"] == "body.scene.subjects[0].position"
    response = client.post("/plan", json={"prompt": "x", "shots": [{"prompt": "pan left"}],
                                          "planner": "learned"})
    assert response.status_code == 503 and response.json()["field"] == "body.planner"
    assert "config.json" in response.json()["error"] and "models.toml" in response.json()["error"]


def test_convert_realestate10k_to_shots_and_back(server) -> None:
    client = server.client()
    sequence = ShotSequence.from_dict(golden())
    response = client.post("/convert", json={
        "input": {"format": "shots", "content": json.dumps(golden())}, "to": "realestate10k"})
    assert response.status_code == 200, response.text
    files = response.json()["files"]
    assert [(f["shot"], f["name"]) for f in files] == [("shot_010", "shot_010.txt"),
                                                       ("shot_020", "shot_020.txt")]
    text = files[1]["content"]
    width, height = sequence.resolution
    response = client.post("/convert", json={
        "input": {"format": "realestate10k", "content": text, "name": "shot_020"},
        "to": "shots", "width": width, "height": height, "fps": sequence.fps})
    assert response.status_code == 200, response.text
    (file,) = response.json()["files"]
    assert file["shot"] == "shot_020" and file["name"] == "shot_020.json"
    back = ShotSequence.from_dict(json.loads(file["content"]))
    original = sequence.shot("shot_020")
    np.testing.assert_allclose(back.shots[0].c2w, original.c2w, atol=1e-6)
    np.testing.assert_allclose(back.shots[0].K, original.K, rtol=1e-6)


def test_convert_a_peer_pose_file(server) -> None:
    files = sorted((PEER_POSES / "cameractrl").glob("*.txt"))
    text = files[0].read_text()
    response = server.client().post("/convert", json={
        "input": {"format": "realestate10k", "content": text, "name": files[0].stem},
        "to": "shots", "width": 1024, "height": 576, "fps": 30})
    assert response.status_code == 200, response.text
    sequence = ShotSequence.from_dict(json.loads(
        response.json()["files"][0]["content"]))
    original = realestate10k.read(files[0])
    np.testing.assert_allclose(sequence.shots[0].K, original.intrinsics * [1024, 576, 1024, 576])


def test_convert_errors_name_the_field(server) -> None:
    client = server.client()
    text = "\n0 0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
    response = client.post("/convert", json={
        "input": {"format": "realestate10k", "content": text}, "to": "shots"})
    assert response.status_code == 422
    assert response.json()["field"] == "body.width" and "resolution" in response.json()["error"]
    assert "/tmp" not in response.json()["error"]
    response = client.post("/convert", json={
        "input": {"format": "realestate10k", "content": "\n1 2 3\n"}, "to": "shots",
        "width": 64, "height": 64, "fps": 24})
    assert response.status_code == 422
    assert response.json()["field"] == "body.input.content"
    assert response.json()["error"].startswith("body.input.content:2: expected 19 values")
    bad = copy.deepcopy(golden())
    bad["fps"] = -1
    response = client.post("/convert", json={
        "input": {"format": "shots", "content": json.dumps(bad)}, "to": "shots"})
    assert response.status_code == 422 and response.json()["field"] == "fps"
    response = client.post("/convert", json={
        "input": {"format": "nerfstudio", "content": json.dumps(golden())},
        "to": "shots"})
    assert response.status_code == 422 and "reads as shots" in response.json()["error"]
    response = client.post("/convert", json={
        "input": {"format": "shots", "content": "{}"}, "to": "npz"})
    assert response.status_code == 422 and response.json()["field"] == "body.to"


def test_oversized_bodies_are_refused_as_json(start_server: StartServer) -> None:
    client = start_server(Settings.from_env(max_body_bytes=2000)).client()
    response = client.post("/jobs", json={"model": "smoke-test", "sequence": golden()})
    assert response.status_code == 413
    assert response.json() == {"error": response.json()["error"], "field": "body"}
    assert "more than the limit of 2000" in response.json()["error"]
    assert client.post("/jobs", json={"model": "smoke-test", "sequence": golden(
        "minimal")}).status_code == 202
