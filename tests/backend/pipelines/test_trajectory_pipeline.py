"""TrajectoryControlNetPipeline on tiny random models: adapters, camera-free guidance (Eq. 5),
inputs, seeds; and the ``trajectory-controlnet`` generator on top of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.generators import GenerationCancelled, GenerationOptions, GenerationRequest
from backend.generators.base import GenerationRequestError
from backend.generators.trajectory import TrajectoryGenerator, TrajectorySettings
from backend.generators.weights import ModelsConfig
from backend.pipelines.trajectory_controlnet import build_tiny_pipeline, camera_free_guidance
from backend.shots import load

ROOT = Path(__file__).resolve().parents[3]
FRAMES, SIZE, STEPS = 4, 16, 2


@pytest.fixture(scope="module")
def pipeline():
    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def flows() -> torch.Tensor:
    return torch.randn(FRAMES, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def _run(pipeline, flows, image=None, **kwargs) -> torch.Tensor:
    kwargs.setdefault("guidance_scale", 7.5)
    return pipeline("a robot walks", flows, image=image, num_inference_steps=STEPS,
                    generator=torch.Generator().manual_seed(0), output_type="latent",
                    **kwargs).frames


def test_runs_with_each_adapter_and_with_camera_free_guidance(pipeline, flows, image) -> None:
    outputs = {
        "base": _run(pipeline, flows, image),
        "camera": _run(pipeline, flows, image, adapter_names="camera"),
        "object": _run(pipeline, flows, image, adapter_names=["object"]),
        "both": _run(pipeline, flows, image, adapter_names=["camera", "object"],
                     adapter_weights=[1.0, 0.5]),
        "camera-free": _run(pipeline, flows, image, trajectory_guidance_scale=1.5),
    }
    for name, latents in outputs.items():
        assert latents.shape == (1, 4, FRAMES, SIZE // 2, SIZE // 2), name
        assert torch.isfinite(latents).all(), name
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not torch.allclose(outputs[a], outputs[b], atol=1e-4), (a, b)
    video = pipeline("a robot", flows, image=image, num_inference_steps=1,
                     guidance_scale=2.0).frames
    assert video.shape == (1, FRAMES, SIZE, SIZE, 3) and 0 <= video.min() <= video.max() <= 1


def test_camera_free_guidance_with_zero_lambda_trajs_is_plain_cfg(pipeline, flows, image):
    plain = _run(pipeline, flows, image, guidance_scale=7.5)  # base motion ControlNet
    guided = _run(pipeline, flows, image, guidance_scale=7.5, trajectory_guidance_scale=0.0)
    torch.testing.assert_close(guided, plain, atol=1e-5, rtol=1e-5)


def test_camera_free_guidance_with_unit_lambdas_is_the_object_branch(pipeline, flows, image):
    alone = _run(pipeline, flows, image, guidance_scale=1.0, adapter_names="object")
    guided = _run(pipeline, flows, image, guidance_scale=1.0, trajectory_guidance_scale=1.0)
    torch.testing.assert_close(guided, alone, atol=1e-4, rtol=1e-4)
    base = _run(pipeline, flows, image, guidance_scale=1.0)
    assert not torch.allclose(guided, base, atol=1e-3)


def test_camera_free_guidance_formula() -> None:
    g = torch.Generator().manual_seed(0)
    uncond, cond, trajs = (torch.randn(3, generator=g) for _ in range(3))
    got = camera_free_guidance(uncond, cond, trajs, 7.5, 1.2)
    torch.testing.assert_close(got, uncond + 7.5 * (cond - uncond) + 1.2 * (trajs - cond))
    torch.testing.assert_close(camera_free_guidance(uncond, cond, trajs, 1.0, 1.0), trajs)


def test_seed_reproduces_and_callback_interrupts(pipeline, flows) -> None:
    a = _run(pipeline, flows)
    torch.testing.assert_close(_run(pipeline, flows), a, atol=0, rtol=0)
    steps = []

    def stop(pipe, step, t, kwargs):
        steps.append(step)
        pipe._interrupt = True
        return kwargs

    pipeline("a robot", flows, num_inference_steps=3, callback_on_step_end=stop,
             output_type="latent")
    assert steps == [0]


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"flow_maps": torch.zeros(FRAMES, 3, SIZE, SIZE)}, "`flow_maps`"),
    ({"flow_maps": torch.zeros(FRAMES, 2, 15, 15)}, "`height` and `width`"),
    ({"adapter_names": "zoom"}, "`adapter_names`"),
    ({"adapter_names": ["camera"], "adapter_weights": [1.0, 2.0]}, "`adapter_weights`"),
    ({"guidance_scale": 0.5}, "`guidance_scale`"),
    ({"prompt": 3}, "`prompt`"),
])
def test_check_inputs_names_the_argument(pipeline, flows, kwargs, argument) -> None:
    call = {"prompt": "a robot", "flow_maps": flows, "num_inference_steps": 1, **kwargs}
    with pytest.raises(ValueError, match=argument):
        pipeline(**call)


def test_generator_runs_the_shots_with_progress_and_cancel(pipeline, tmp_path: Path) -> None:
    generator = TrajectoryGenerator(
        ModelsConfig(tmp_path, environ={}),
        TrajectorySettings(width=SIZE, height=SIZE, num_frames=FRAMES, num_inference_steps=STEPS),
        pipeline_factory=lambda device: pipeline)
    assert generator.describe()["available"] is True
    sequence = load(ROOT / "tests" / "golden" / "two_shots.json")
    request = GenerationRequest(sequence=sequence, shots=[s.name for s in sequence.shots],
                                image=np.zeros((SIZE, SIZE, 3), np.uint8))
    updates = []
    video = generator.generate(request, lambda f, stage: updates.append((f, stage)),
                               lambda: False)
    assert video.frames.shape == (2 * FRAMES, SIZE, SIZE, 3) and video.frames.dtype == np.uint8
    assert video.shot_ranges == [("shot_010", 0, FRAMES - 1),
                                 ("shot_020", FRAMES, 2 * FRAMES - 1)]
    assert [f for f, _ in updates] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    with pytest.raises(GenerationCancelled):
        generator.generate(request, lambda f, stage: None, lambda: True)
    with pytest.raises(GenerationRequestError, match=r"options\.width"):
        generator.check_request(GenerationRequest(sequence=sequence, shots=["shot_010"],
                                                  options=GenerationOptions(width=20)))


def test_generator_without_weights_lists_them(tmp_path: Path) -> None:
    generator = TrajectoryGenerator(ModelsConfig(tmp_path, environ={}))
    ok, message = generator.available()
    assert not ok and "missing" in message and "motion_adapter" in message
    assert generator.implemented
    with pytest.raises(RuntimeError, match="weights are missing"):
        generator.load("cpu")
