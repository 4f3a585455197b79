"""Models that need downloaded weights: where their files are expected and whether they are there.

Weights are never downloaded by ShotBridge. Each model names the folders it reads (diffusers
layout) in ``<data_dir>/models.toml``::

    [models.camera-dit]
    path = "/models/Wan2.1-T2V-1.3B-Diffusers"
    camera_encoder = "/models/shotbridge-camera-encoder"

    [models.trajectory-controlnet]
    path = "/models/stable-diffusion-v1-5"
    motion_adapter = "/models/animatediff-motion-adapter-v1-5-3"
    controlnet = "/models/shotbridge-trajectory-controlnet"

A key left out falls back to ``<data_dir>/models/<model>/<key>`` (``path`` to ``.../base``); an
environment variable ``SHOTBRIDGE_<MODEL>_<KEY>`` (``SHOTBRIDGE_CAMERA_DIT_PATH``) overrides both,
and ``SHOTBRIDGE_MODELS_CONFIG`` names another config file. The generators themselves arrive with
their issues: until then a model whose weights are all present says so and refuses jobs (501); it
never pretends to generate.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.generators.base import (
    CancelledCallback,
    GeneratedVideo,
    GenerationRequest,
    Generator,
    ProgressCallback,
)

CONFIG_NAME = "models.toml"
CONFIG_ENV = "SHOTBRIDGE_MODELS_CONFIG"


@dataclass(frozen=True)
class Component:
    """One folder of weights a model reads."""

    key: str
    """Key in the model's table of ``models.toml``."""
    description: str
    """What goes there, with an example source."""
    required: tuple[str, ...]
    """Glob patterns, relative to the folder, that must each match a file."""


def diffusers_pipeline_files(*components: str) -> tuple[str, ...]:
    """What a diffusers pipeline folder must hold: ``model_index.json``, and per model component
    its ``config.json`` and safetensors weights."""
    files = ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/*"]
    for component in components:
        files += [f"{component}/config.json", f"{component}/*.safetensors"]
    return tuple(files)


MODEL_FILES = ("config.json", "*.safetensors")


class ModelsConfig:
    """Reads ``models.toml`` and the environment overrides (read again at every call, so a user
    can drop weights in and fix the file without restarting the server)."""

    def __init__(self, data_dir: str | Path, config_path: str | Path | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.environ = os.environ if environ is None else environ
        self.path = Path(config_path or self.environ.get(CONFIG_ENV)
                         or self.data_dir / CONFIG_NAME)

    @staticmethod
    def env_name(model: str, key: str) -> str:
        return f"SHOTBRIDGE_{model}_{key}".upper().replace("-", "_")

    def table(self, model: str) -> dict[str, Any]:
        """The ``[models.<model>]`` table; ValueError naming the file when it is malformed."""
        if not self.path.is_file():
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{self.path}: not valid TOML: {error}") from None
        table = data.get("models", {}).get(model, {})
        if not isinstance(table, dict):
            raise ValueError(f"{self.path}: [models.{model}] must be a table")
        return table

    def folder(self, model: str, key: str) -> tuple[Path, str]:
        """Where ``key`` of ``model`` is, and which setting said so."""
        env = self.env_name(model, key)
        if self.environ.get(env):
            return Path(self.environ[env]).expanduser(), f"${env}"
        value = self.table(model).get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"{self.path}: [models.{model}] {key} must be a string path")
            return Path(value).expanduser(), f"{self.path} [models.{model}] {key}"
        default = self.data_dir / "models" / model / ("base" if key == "path" else key)
        return default, "the default location"


class WeightsGenerator(Generator):
    """A registered model whose weights are looked up but whose generator is not written yet."""

    components: tuple[Component, ...] = ()
    implemented = False

    def __init__(self, config: ModelsConfig) -> None:
        self.config = config

    def missing(self) -> list[str]:
        """One line per component whose folder lacks a required file."""
        lines = []
        for component in self.components:
            folder, source = self.config.folder(self.name, component.key)
            absent = [pattern for pattern in component.required if not any(folder.glob(pattern))]
            if absent:
                lines.append(f"{component.key} = {folder} (from {source}): missing "
                             f"{', '.join(absent)} -- {component.description}")
        return lines

    def available(self) -> tuple[bool, str]:
        try:
            missing = self.missing()
        except ValueError as error:
            return False, f"{self.name}: {error}"
        if missing:
            return False, (f"{self.name} weights are missing. " + "; ".join(missing) + ". Put "
                           f"the folders there, or name them in {self.config.path} under "
                           f"[models.{self.name}] or with SHOTBRIDGE_"
                           f"{self.name.upper().replace('-', '_')}_<KEY>; see README, Models.")
        folders = ", ".join(str(self.config.folder(self.name, c.key)[0]) for c in self.components)
        return True, (f"{self.name} weights found ({folders}), but the {self.name} generator is "
                      "not implemented yet: it arrives with its own issue")

    def load(self, device: str = "cpu") -> None:
        raise NotImplementedError(f"the {self.name} generator is not implemented yet")

    def unload(self) -> bool:
        return False

    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        raise NotImplementedError(f"the {self.name} generator is not implemented yet")


class CameraDiTGenerator(WeightsGenerator):
    """Wan 2.1/2.2 text/image-to-video DiT with ShotBridge's camera encoder (ShotVerse's
    controller). Weights only for now; the generator arrives with its issue."""

    name = "camera-dit"
    kind = "camera-dit"
    components = (
        Component("path", "Wan 2.1/2.2 in diffusers layout, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                  diffusers_pipeline_files("transformer", "vae", "text_encoder")),
        Component("camera_encoder", "ShotBridge camera encoder (config.json + safetensors)",
                  MODEL_FILES),
    )


class TrajectoryControlNetGenerator(WeightsGenerator):
    """AnimateDiff with a SparseCtrl-style trajectory ControlNet (Image Conductor): the weights
    it needs. The generator is :class:`backend.generators.trajectory.TrajectoryGenerator`; an
    optional ``image_controlnet`` key names SparseCtrl RGB for the first frame."""

    name = "trajectory-controlnet"
    kind = "trajectory-controlnet"
    components = (
        Component("path", "Stable Diffusion 1.5 in diffusers layout",
                  diffusers_pipeline_files("unet", "vae", "text_encoder")),
        Component("motion_adapter", "AnimateDiff motion adapter, e.g. "
                                    "guoyww/animatediff-motion-adapter-v1-5-3", MODEL_FILES),
        Component("controlnet", "trajectory ControlNet (SparseControlNetModel layout, 2 flow "
                                "channels) trained with `python -m backend train controlnet`; "
                                "SparseCtrl RGB has 4 channels and does not load here",
                  MODEL_FILES),
    )
