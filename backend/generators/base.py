"""The one interface every video generator implements, and the registry the server reads.

A generator turns a :class:`GenerationRequest` (a validated ShotSequence, the shots to render, an
optional first-frame image and a few options) into a :class:`GeneratedVideo`::

    video = generator.generate(request, progress, cancelled)

``progress(fraction, stage)`` reports how far it is (0..1) and what it is doing; ``cancelled()``
is polled between denoising steps, and once it answers True the generator stops and raises
:class:`GenerationCancelled`. Generators are constructed cheaply (no weights read), report with
``available()`` whether they can run here, load their weights in ``load(device)`` (the server calls
it from a worker thread, never on the event loop) and free them in ``unload()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.camera.resample import WAN_TEMPORAL_COMPRESSION
from backend.shots import ShotSequence

ProgressCallback = Callable[[float, str], None]
"""``progress(fraction, stage)``: fraction in 0..1 of the whole generation, stage a short text."""
CancelledCallback = Callable[[], bool]
"""``cancelled()``: True once the job should stop."""


class GenerationCancelled(Exception):
    """Raised by a generator that stopped because ``cancelled()`` answered True."""


class GenerationRequestError(ValueError):
    """A request a generator cannot take; ``field`` names the option (``options.num_frames``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class GenerationOptions:
    """What the caller may choose; ``None`` means the generator's default."""

    seed: int = 0
    """Seed of the noise: the same request and seed give the same video."""
    num_inference_steps: int | None = None
    """Denoising steps."""
    width: int | None = None
    """Output width in pixels."""
    height: int | None = None
    """Output height in pixels."""
    num_frames: int | None = None
    """Frames generated per shot."""


@dataclass
class GenerationRequest:
    """Everything a generator needs for one job."""

    sequence: ShotSequence
    """The validated ShotSequence (version 1)."""
    shots: list[str]
    """Names of the shots to render, in the order to render them."""
    options: GenerationOptions = field(default_factory=GenerationOptions)
    """Seed, steps and output size."""
    image: np.ndarray | None = None
    """Optional first-frame condition, uint8 (H, W, 3)."""
    device: str = "cpu"
    """Where to run: ``cpu`` or ``cuda:N``; decided by the worker that runs the job."""


@dataclass
class GeneratedVideo:
    """A generated video and where each shot lies in it."""

    frames: np.ndarray
    """uint8 (F, H, W, 3) RGB frames."""
    fps: float
    """Playback frame rate."""
    shot_ranges: list[tuple[str, int, int]]
    """``(shot name, first frame, last frame)`` in the video's frame indices, inclusive."""

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames: expected uint8 (F, H, W, 3), got {frames.dtype} "
                             f"{frames.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps: {self.fps} must be positive")
        self.frames = frames


class Generator(ABC):
    """A video generator the server can run; see the module docstring for the protocol."""

    name: str
    """Model name clients ask for in ``POST /jobs`` (``"smoke-test"``, ``"camera-dit"``, ...)."""
    kind: str
    """Model family: ``smoke-test``, ``camera-dit`` or ``trajectory-controlnet``."""
    implemented: bool = True
    """False for a registered model whose generator arrives with a later issue."""

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether it can run here, and a message saying why not or what it is."""

    @abstractmethod
    def load(self, device: str = "cpu") -> None:
        """Load the weights onto ``device``; calling it again is cheap."""

    @abstractmethod
    def unload(self) -> bool:
        """Drop every loaded weight; True when something was loaded."""

    @abstractmethod
    def generate(self, request: GenerationRequest, progress: ProgressCallback,
                 cancelled: CancelledCallback) -> GeneratedVideo:
        """Generate the video; raise :class:`GenerationCancelled` when ``cancelled()``."""

    def check_request(self, request: GenerationRequest) -> None:
        """Refuse a request this generator cannot take, before it is queued.

        Raises :class:`GenerationRequestError` naming the option. The default accepts all.
        """
        return None

    def describe(self) -> dict[str, Any]:
        """The ``/health`` entry: name, kind, whether it can run now, and a message."""
        ok, message = self.available()
        return {"name": self.name, "kind": self.kind, "available": ok and self.implemented,
                "message": message}


class GeneratorRegistry:
    """The generators a server offers, by name; the public way to add one."""

    def __init__(self, generators: Iterable[Generator] = ()) -> None:
        self._generators: dict[str, Generator] = {}
        for generator in generators:
            self.register(generator)

    def register(self, generator: Generator) -> None:
        """Add ``generator``; a name can be registered once."""
        if not isinstance(generator, Generator):
            raise TypeError(f"{generator!r} is not a backend.generators.Generator")
        if generator.name in self._generators:
            raise ValueError(f"a generator named {generator.name!r} is already registered")
        self._generators[generator.name] = generator

    def get(self, name: str) -> Generator:
        """The generator called ``name``; KeyError naming the known ones otherwise."""
        try:
            return self._generators[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}; known models: {self.names()}") from None

    def names(self) -> list[str]:
        return list(self._generators)

    def __contains__(self, name: object) -> bool:
        return name in self._generators

    def __iter__(self) -> Iterator[Generator]:
        return iter(list(self._generators.values()))

    def __len__(self) -> int:
        return len(self._generators)


def check_wan_num_frames(num_frames: int | None) -> None:
    """Refuse a requested frame count that Wan's VAE cannot take (4k + 1); None passes."""
    if num_frames is not None and (num_frames < 1 or (num_frames - 1) % WAN_TEMPORAL_COMPRESSION):
        raise GenerationRequestError(
            "options.num_frames", f"{num_frames} is not 4k+1 (Wan's VAE compresses time 4x after "
                                  "the first frame); e.g. 9, 17, 33, 49, 81")

