"""Video generators behind one interface (:class:`Generator`), and the built-in set.

- ``smoke-test`` (:mod:`backend.generators.smoke`): a real diffusers WanPipeline with tiny random
  weights; a smoke test of the job path, not a real model.
- ``camera-dit`` and ``trajectory-controlnet`` (:mod:`backend.generators.weights`): registered so
  that clients see them and learn which weights are missing; their generators arrive with their
  issues.

Torch and diffusers are imported only by :mod:`backend.generators.smoke`, on first use of
:func:`builtin_generators`.
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
    from backend.generators.smoke import SmokeTestGenerator

    config = ModelsConfig(data_dir, models_config, environ)
    return [SmokeTestGenerator(), CameraDiTGenerator(config), TrajectoryControlNetGenerator(config)]
