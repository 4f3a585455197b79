"""CameraDiTPipeline and the camera-dit generator on tiny random Wan components (CPU, offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import WanTransformer3DModel

from backend.camera.se3 import make_pose
from backend.generators.base import (
    GenerationCancelled,
    GenerationOptions,
    GenerationRequest,
    GenerationRequestError,
)
from backend.generators.camera_dit import CameraDiTGenerator, CameraDiTSettings
from backend.generators.smoke import build_pipeline
from backend.generators.weights import ModelsConfig
from backend.models.camera_dit import CameraDiTModel
from backend.pipelines.camera_dit import CameraDiTPipeline, ShotLayout, shot_frame_counts
from backend.shots import Shot, ShotSequence

CAMERA = {"rope_axes_dim": (2, 2, 4, 4), "rope_max_shots": 4}
SIZE = {"height": 32, "width": 32}


def make_sequence(lengths: tuple[int, ...] = (20, 12)) -> ShotSequence:
    shots, frame = [], 1
    for k, count in enumerate(lengths):
        centres = np.stack([np.linspace(0, 1, count) + k, np.zeros(count), np.zeros(count)], -1)
        c2w = make_pose(np.repeat(np.eye(3)[None], count, 0), centres)
        K = np.tile([100.0, 100.0, 32.0, 16.0], (count, 1))
        shots.append(Shot(name=f"shot_{k}", camera="Camera", frame_start=frame,
                          frame_end=frame + count - 1, c2w=c2w, K=K,
                          prompt=f"a slow dolly shot {k}"))
        frame += count
    return ShotSequence(fps=16.0, resolution=(64, 32), shots=shots,
                        prompt="a robot walks across the plaza").validate()


def randomize_camera(model: CameraDiTModel, seed: int) -> CameraDiTModel:
    """Non-zero camera weights, so that the camera changes the output."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in model.camera_encoder:
            torch.nn.init.normal_(layer.weight, std=0.1)
    return model


def tiny_pipeline(two_experts: bool = False) -> CameraDiTPipeline:
    wan = build_pipeline(weight_seed=0)
    transformer = randomize_camera(CameraDiTModel.from_wan(wan.transformer, **CAMERA), 1).eval()
    transformer_2 = None
    if two_experts:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
            base_2 = WanTransformer3DModel.from_config(wan.transformer.config)
        transformer_2 = CameraDiTModel.from_wan(base_2, **CAMERA).eval()
    pipe = CameraDiTPipeline(tokenizer=wan.tokenizer, text_encoder=wan.text_encoder, vae=wan.vae,
                             scheduler=wan.scheduler, transformer=transformer,
                             transformer_2=transformer_2)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe() -> CameraDiTPipeline:
    return tiny_pipeline()


def run(pipe: CameraDiTPipeline, seed: int = 0, **kwargs):
    options = {"num_inference_steps": 2, "guidance_scale": 2.0, "max_sequence_length": 16,
               **SIZE, **kwargs}
    return pipe(sequence=make_sequence(), generator=torch.Generator().manual_seed(seed),
                **options)


def test_layout_snaps_shots_to_4k_plus_1() -> None:
    sequence = make_sequence((20, 12))
    assert shot_frame_counts(sequence.shots, 16.0, 16.0) == [21, 13]
    assert shot_frame_counts(sequence.shots, 16.0, 8.0) == [9, 5]
    layout = ShotLayout(("a", "b"), (21, 13))
    assert layout.latent_frames == (6, 4)
    assert layout.shot_ranges == [("a", 0, 20), ("b", 21, 33)]
    assert layout.latent_ranges == [("a", 0, 5), ("b", 6, 9)]


def test_two_shots_frame_count_ranges_and_seed(pipe: CameraDiTPipeline) -> None:
    out = run(pipe, num_frames_per_shot=[9, 5])
    assert out.frames.shape == (1, 14, 32, 32, 3)
    assert out.shot_ranges == [("shot_0", 0, 8), ("shot_1", 9, 13)]
    again = run(pipe, num_frames_per_shot=[9, 5])
    np.testing.assert_array_equal(out.frames, again.frames)
    other = run(pipe, seed=1, num_frames_per_shot=[9, 5])
    assert not np.allclose(out.frames, other.frames)
    # durations at 8 fps: 20 and 12 frames at 16 fps -> 9 and 5 frames
    assert run(pipe, fps=8.0, output_type="latent").frames.shape[2] == 3 + 2


def test_camera_changes_the_video(pipe: CameraDiTPipeline) -> None:
    base = run(pipe, num_frames_per_shot=5, output_type="latent").frames
    moved = make_sequence()
    for shot in moved.shots:
        shot.c2w[:, :3, 3] *= -3.0
    changed = pipe(sequence=moved, num_frames_per_shot=5, num_inference_steps=2,
                   guidance_scale=2.0, max_sequence_length=16, output_type="latent",
                   generator=torch.Generator().manual_seed(0), **SIZE).frames
    assert not torch.allclose(base, changed)


def test_progress_per_step_and_interrupt(pipe: CameraDiTPipeline) -> None:
    steps = []

    def on_step(p, i, t, kwargs):
        steps.append(i)
        return kwargs

    run(pipe, num_frames_per_shot=5, num_inference_steps=3, callback_on_step_end=on_step)
    assert steps == [0, 1, 2]

    steps.clear()

    def stop(p, i, t, kwargs):
        steps.append(i)
        p._interrupt = True
        return kwargs

    out = run(pipe, num_frames_per_shot=5, num_inference_steps=3, callback_on_step_end=stop)
    assert steps == [0] and out.frames is None


def test_two_experts_switch_at_the_boundary() -> None:
    pipe = tiny_pipeline(two_experts=True)
    assert pipe.config.boundary_ratio == 0.875
    calls = {"transformer": [], "transformer_2": []}
    for name, times in calls.items():
        getattr(pipe, name).register_forward_pre_hook(
            lambda module, args, kwargs, times=times: times.append(float(kwargs["timestep"][0])),
            with_kwargs=True)
    run(pipe, num_frames_per_shot=5, num_inference_steps=6, guidance_scale=1.0)
    timesteps = pipe.scheduler.timesteps.tolist()
    high = [t for t in timesteps if t >= 875]
    assert 0 < len(high) < len(timesteps)
    assert calls["transformer"] == pytest.approx(high)
    assert calls["transformer_2"] == pytest.approx([t for t in timesteps if t < 875])


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"height": 40}, "height"),
    ({"width": 8}, "width"),
    ({"num_frames_per_shot": 6}, "num_frames_per_shot"),
    ({"shots": []}, "shots"),
    ({"shots": ["nope"]}, "shots"),
    ({"shots": ["shot_0"] * 5}, "shots"),
    ({"shot_prompts": ["one"]}, "shot_prompts"),
    ({"num_frames_per_shot": 201}, "num_frames_per_shot"),
    ({"image": np.zeros((32, 32, 3), np.uint8)}, "image"),
])
def test_errors_name_the_argument(pipe: CameraDiTPipeline, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument}"):
        run(pipe, **kwargs)


def test_image_to_video_conditions_the_first_frame() -> None:
    wan = build_pipeline(weight_seed=0)
    config = dict(wan.transformer.config)
    config["in_channels"] = 2 * 16 + 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        base = WanTransformer3DModel.from_config(config)
    transformer = CameraDiTModel.from_wan(base, **CAMERA).eval()
    pipe = CameraDiTPipeline(tokenizer=wan.tokenizer, text_encoder=wan.text_encoder, vae=wan.vae,
                             scheduler=wan.scheduler, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match=r"^image"):
        run(pipe, num_frames_per_shot=5)
    black, white = (np.full((32, 32, 3), v, np.uint8) for v in (0, 255))
    out = run(pipe, num_frames_per_shot=[5, 5], image=black)
    assert out.frames.shape == (1, 10, 32, 32, 3)
    assert not np.allclose(out.frames, run(pipe, num_frames_per_shot=[5, 5], image=white).frames)


# ---- the generator, loading tiny weights from disk --------------------------------------------


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("camera_dit_weights")
    wan = build_pipeline(weight_seed=0)
    wan.save_pretrained(root / "base")
    camera = randomize_camera(CameraDiTModel.from_wan(wan.transformer, **CAMERA), 2)
    camera.save_camera_pretrained(root / "camera")
    (root / "models.toml").write_text(
        f'[models.camera-dit]\npath = "{root / "base"}"\ncamera_encoder = "{root / "camera"}"\n')
    return root


def make_generator(weights_dir) -> CameraDiTGenerator:
    settings = CameraDiTSettings(width=32, height=32, num_inference_steps=2, guidance_scale=2.0,
                                 max_sequence_length=16)
    return CameraDiTGenerator(ModelsConfig(weights_dir, environ={}), settings)


def test_generator_loads_from_disk_and_generates(weights_dir) -> None:
    generator = make_generator(weights_dir)
    assert generator.available()[0] and generator.describe()["available"]
    sequence = make_sequence()
    request = GenerationRequest(sequence=sequence, shots=["shot_0", "shot_1"],
                                options=GenerationOptions(seed=3, num_frames=5))
    reports = []
    video = generator.generate(request, lambda f, s: reports.append(f), lambda: False)
    assert video.frames.shape == (10, 32, 32, 3) and video.frames.dtype == np.uint8
    assert video.shot_ranges == [("shot_0", 0, 4), ("shot_1", 5, 9)]
    assert len(reports) == 3 and reports[-1] == 1.0
    pipe = generator._pipeline("cpu")
    assert torch.count_nonzero(pipe.transformer.camera_encoder[0].weight) > 0
    again = generator.generate(request, lambda f, s: None, lambda: False)
    np.testing.assert_array_equal(video.frames, again.frames)

    calls = []

    def cancel_after_first() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(GenerationCancelled):
        generator.generate(request, lambda f, s: None, cancel_after_first)
    with pytest.raises(GenerationRequestError, match=r"options\.num_frames"):
        generator.check_request(GenerationRequest(sequence=sequence, shots=["shot_0"],
                                                  options=GenerationOptions(num_frames=6)))
    assert generator.unload()
