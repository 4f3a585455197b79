"""The generator interface, the smoke-test WanPipeline, the weights lookup and MP4 writing.

(They live beside the server's tests: this issue's tests stay in ``tests/backend/server``.)
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from diffusers import WanPipeline

from backend.generators import (
    CameraDiTGenerator,
    GeneratedVideo,
    GenerationCancelled,
    GenerationOptions,
    GenerationRequest,
    GenerationRequestError,
    GeneratorRegistry,
    ModelsConfig,
    TrajectoryControlNetGenerator,
    builtin_generators,
)
from backend.generators import smoke as smoke_module
from backend.generators.smoke import SmokeTestGenerator, build_tokenizer, decode_latents
from backend.generators.video import write_mp4
from backend.shots import ShotSequence
from tests.backend.server.conftest import SlowGenerator, golden


@pytest.fixture(scope="module")
def smoke() -> SmokeTestGenerator:
    return SmokeTestGenerator()


def _request(shots: list[str] | None = None, **options: int) -> GenerationRequest:
    sequence = ShotSequence.from_dict(golden())
    return GenerationRequest(sequence=sequence, shots=shots or ["shot_010", "shot_020"],
                             options=GenerationOptions(**options))


def _run(generator, request):
    reports: list[tuple[float, str]] = []
    video = generator.generate(request, lambda f, s: reports.append((f, s)), lambda: False)
    return video, reports


def test_smoke_is_a_real_wan_pipeline_and_says_what_it_is(smoke) -> None:
    smoke.load("cpu")
    pipeline = smoke._pipeline("cpu")
    assert isinstance(pipeline, WanPipeline)
    ok, message = smoke.available()
    assert ok and "random weights" in message and "not a real model" in message
    assert "NOT a real model" in smoke_module.__doc__ and "random weights" in smoke_module.__doc__
    tokens = build_tokenizer()("A robot walks, zooming!")["input_ids"]
    assert tokens[-1] == 1 and 2 in tokens  # </s> appended, unknown words -> <unk>


def test_smoke_video_shape_progress_and_seed(smoke) -> None:
    video, reports = _run(smoke, _request(num_inference_steps=3, seed=5))
    assert isinstance(video, GeneratedVideo)
    assert video.frames.dtype == np.uint8 and video.frames.shape == (18, 32, 64, 3)
    assert video.shot_ranges == [("shot_010", 0, 8), ("shot_020", 9, 17)]
    fractions = [fraction for fraction, _ in reports]
    assert fractions == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert reports[0][1] == "shot_010: denoising step 1/3"
    same, _ = _run(smoke, _request(num_inference_steps=3, seed=5))
    other, _ = _run(smoke, _request(num_inference_steps=3, seed=6))
    np.testing.assert_array_equal(video.frames, same.frames)
    assert np.abs(video.frames.astype(int) - other.frames).mean() > 1
    assert video.frames.std() > 1  # not a constant image


def test_smoke_cancels_between_denoising_steps(smoke) -> None:
    reports: list[tuple[float, str]] = []
    with pytest.raises(GenerationCancelled):
        smoke.generate(_request(num_inference_steps=50),
                       lambda f, s: reports.append((f, s)), lambda: len(reports) >= 2)
    # The pipeline's loop was interrupted (pipe._interrupt): no step ran after the cancel.
    assert reports[-1][1] == "shot_010: denoising step 2/50" and len(reports) == 2


def test_smoke_sizes_and_refusals(smoke) -> None:
    assert smoke.output_size(_request(width=128)) == (128, 64)
    assert smoke.output_size(_request(height=64)) == (112, 64)
    for options, field in (({"num_frames": 8}, "options.num_frames"),
                           ({"width": 100}, "options.width"),
                           ({"width": 2048, "height": 2048}, "options.width")):
        with pytest.raises(GenerationRequestError) as caught:
            smoke.check_request(_request(**options))
        assert caught.value.field == field and str(caught.value).startswith(field)
    video, _ = _run(smoke, _request(["shot_020"], num_frames=5, width=32, height=16))
    assert video.frames.shape == (5, 16, 32, 3)


def test_registry() -> None:
    registry = GeneratorRegistry([SlowGenerator()])
    assert registry.names() == ["slow-test"] and "slow-test" in registry and len(registry) == 1
    with pytest.raises(ValueError, match="already registered"):
        registry.register(SlowGenerator())
    with pytest.raises(KeyError, match="known models: \\['slow-test'\\]"):
        registry.get("camera-dit")
    with pytest.raises(TypeError):
        registry.register(object())  # type: ignore[arg-type]


def test_builtin_generators(tmp_path: Path) -> None:
    names = [(g.name, g.kind, g.implemented) for g in builtin_generators(tmp_path)]
    assert names == [("smoke-test", "smoke-test", True), ("camera-dit", "camera-dit", True),
                     ("trajectory-controlnet", "trajectory-controlnet", True)]


def test_weights_lookup_order(tmp_path: Path) -> None:
    config_file = tmp_path / "models.toml"
    config = ModelsConfig(tmp_path, environ={})
    assert config.folder("camera-dit", "path") == (
        tmp_path / "models" / "camera-dit" / "base", "the default location")
    config_file.write_text('[models.camera-dit]\npath = "~/wan"\n')
    assert config.folder("camera-dit", "path") == (
        Path("~/wan").expanduser(), f"{config_file} [models.camera-dit] path")
    config = ModelsConfig(tmp_path, environ={"SHOTBRIDGE_CAMERA_DIT_PATH": "/elsewhere"})
    assert config.folder("camera-dit", "path") == (Path("/elsewhere"),
                                                   "$SHOTBRIDGE_CAMERA_DIT_PATH")
    other = tmp_path / "other.toml"
    other.write_text('[models.trajectory-controlnet]\ncontrolnet = "/ctrl"\n')
    config = ModelsConfig(tmp_path, environ={"SHOTBRIDGE_MODELS_CONFIG": str(other)})
    assert config.folder("trajectory-controlnet", "controlnet")[0] == Path("/ctrl")


def test_weights_messages(tmp_path: Path) -> None:
    config = ModelsConfig(tmp_path, environ={})
    generator = TrajectoryControlNetGenerator(config)
    ok, message = generator.available()
    assert not ok
    for key in ("path", "motion_adapter", "controlnet"):
        assert f"{key} = {tmp_path / 'models' / 'trajectory-controlnet'}" in message
    assert "unet/config.json" in message and "SHOTBRIDGE_TRAJECTORY_CONTROLNET_<KEY>" in message
    (tmp_path / "models.toml").write_text("[models.camera-dit\n")
    ok, message = CameraDiTGenerator(config).available()
    assert not ok and "not valid TOML" in message and str(tmp_path / "models.toml") in message
    assert not CameraDiTGenerator(config).describe()["available"]
    with pytest.raises(NotImplementedError):
        CameraDiTGenerator(config).generate(_request(), lambda f, s: None, lambda: False)


def test_write_mp4_pads_odd_sizes(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (7, 33, 45, 3), dtype=np.uint8)
    path = write_mp4(frames, 12.0, tmp_path / "odd.mp4")
    video = iio.imread(path, plugin="FFMPEG", index=None)
    assert video.shape == (7, 34, 46, 3)
    meta = iio.immeta(path, plugin="FFMPEG")
    assert meta["codec"] == "h264" and meta["fps"] == 12.0
    assert not list(tmp_path.glob("*.part*"))
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(frames.astype(np.float32), 12.0, tmp_path / "bad.mp4")


def test_decoding_latents_matches_the_pipeline(smoke) -> None:
    pipeline = smoke._pipeline("cpu")
    call = {"prompt": "a dolly shot", "height": 32, "width": 48, "num_frames": 5,
            "num_inference_steps": 2, "guidance_scale": 1.0, "max_sequence_length": 32}
    frames = pipeline(generator=torch.Generator().manual_seed(3), output_type="np",
                      **call).frames
    latents = pipeline(generator=torch.Generator().manual_seed(3), output_type="latent",
                       **call).frames
    np.testing.assert_allclose(decode_latents(pipeline, latents), frames, atol=1e-5)
