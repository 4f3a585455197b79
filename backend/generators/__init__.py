"""Video generators behind one interface (:class:`Generator`), and the built-in set.

- ``smoke-test`` (:mod:`backend.generators.smoke`): a real diffusers WanPipeline with tiny random
  weights; a smoke test of the job path, not a real model.
- ``trajectory-controlnet`` (:mod:`backend.generators.trajectory`): Image Conductor on AnimateDiff;
  answers 503 naming the missing weight folders until they are there
  (:mod:`backend.generators.weights`).
- ``camera-dit`` (:mod:`backend.generators.weights`): registered so that clients see it and learn
  which weights are missing; its generator arrives with its issue.

Torch and diffusers are imported by :mod:`backend.generators.smoke` on first use of
:func:`builtin_generators`, and by the trajectory generator when it loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from backend.generators.base import (
    CancelledCallback,
    GeneratedVideo,
    GenerationCancelled,
    GenerationOptions,
    GenerationRequest,
    GenerationRequestError,
    Generator,
    GeneratorRegistry,
    ProgressCallback,
)
from backend.generators.weights import (
    CameraDiTGenerator,
    ModelsConfig,
    TrajectoryControlNetGenerator,
)

__all__ = [
    "CameraDiTGenerator",
    "CancelledCallback",
    "GeneratedVideo",
    "GenerationCancelled",
    "GenerationOptions",
    "GenerationRequest",
    "GenerationRequestError",
    "Generator",
    "GeneratorRegistry",
    "ModelsConfig",
    "ProgressCallback",
    "TrajectoryControlNetGenerator",
    "builtin_generators",
]


def builtin_generators(data_dir: str | Path, models_config: str | Path | None = None,
                       environ: Mapping[str, str] | None = None) -> list[Generator]:
    """The generators every server offers: smoke-test, camera-dit, trajectory-controlnet."""
    from backend.generators.camera_dit import CameraDiTGenerator as CameraDiT
    from backend.generators.smoke import SmokeTestGenerator
    from backend.generators.trajectory import TrajectoryGenerator

    config = ModelsConfig(data_dir, models_config, environ)
    return [SmokeTestGenerator(), CameraDiT(config), TrajectoryGenerator(config)]
