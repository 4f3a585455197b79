"""The planner interface: a shot list (+ scene context, + image) in, a ShotSequence out.

``PlanRequest`` is what the CLI (``python -m backend plan``), the server (``POST /plan``) and the
add-on's "Plan shots" send; ``SceneContext.from_dict`` reads the add-on's scene context JSON
(``blender_addon/scene_context.py``: metres, OpenCV camera axes, pixel intrinsics). Every planner
returns a validated :class:`~backend.shots.ShotSequence` and the warnings it has for the user
(words it did not use, shots with no camera instruction); the warnings are also kept in
``sequence.metadata["planner"]["warnings"]``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.shots import ShotSequence

DEFAULT_FPS = 24.0
DEFAULT_RESOLUTION = (1280, 720)


class PlanRequestError(ValueError):
    """A malformed plan request; the message starts with the field's path."""


def _fail(path: str, message: str) -> None:
    raise PlanRequestError(f"{path}: {message}")


def _vector(path: str, value: Any, size: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(path, f"expected {size} numbers, got {value!r}")
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        _fail(path, f"expected {size} finite numbers, got {value!r}")
    return array


@dataclass
class ShotPrompt:
    """One shot of the shot list."""

    prompt: str
    """What the shot shows and how the camera moves, in the user's words."""
    name: str | None = None
    """Shot (marker) name; the planner names unnamed shots shot_010, shot_020, ..."""


@dataclass
class SceneSubject:
    """A subject the cameras can frame, orbit or follow."""

    name: str
    """Object name."""
    position: np.ndarray
    """(3,) world position, metres."""
    bbox_min: np.ndarray
    """(3,) lower corner of its world bounding box."""
    bbox_max: np.ndarray
    """(3,) upper corner of its world bounding box."""
    track: np.ndarray | None = None
    """Optional (F, 3) world positions over the timeline from ``frame_start``, for follow shots."""


@dataclass
class SceneContext:
    """What the planner knows of the scene. With none, one subject stands at the origin."""

    fps: float = DEFAULT_FPS
    """Frames per second of the timeline the plan is made for."""
    resolution: tuple[int, int] = DEFAULT_RESOLUTION
    """Render size (W, H) in pixels."""
    subjects: list[SceneSubject] = field(default_factory=list)
    """Subjects, first = the main one."""
    camera_c2w: np.ndarray | None = None
    """(4, 4) the current camera, OpenCV camera-to-world, if any."""
    camera_K: np.ndarray | None = None
    """(4,) its intrinsics [fx, fy, cx, cy] at ``resolution``."""
    frame_start: int = 1
    """First frame of the plan."""

    @classmethod
    def from_dict(cls, data: Any) -> SceneContext:
        """Read the add-on's scene context JSON; errors name the field (``scene.fps``...)."""
        if not isinstance(data, dict):
            _fail("scene", f"expected an object, got {type(data).__name__}")
        fps = data.get("fps", DEFAULT_FPS)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            _fail("scene.fps", f"expected a positive number, got {fps!r}")
        resolution = data.get("resolution", list(DEFAULT_RESOLUTION))
        if (not isinstance(resolution, (list, tuple)) or len(resolution) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0
                       for v in resolution)):
            _fail("scene.resolution", f"expected [W, H] positive integers, got {resolution!r}")
        subjects = []
        for i, item in enumerate(data.get("subjects") or []):
            path = f"scene.subjects[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                _fail(path, "expected an object with a name")
            position = _vector(f"{path}.position", item.get("position"), 3)
            low = _vector(f"{path}.bbox_min", item.get("bbox_min", position.tolist()), 3)
            high = _vector(f"{path}.bbox_max", item.get("bbox_max", position.tolist()), 3)
            if np.any(high < low):
                _fail(f"{path}.bbox_max", "must not be below bbox_min")
            track = item.get("track")
            if track is not None:
                track = np.asarray(track, dtype=np.float64)
                if track.ndim != 2 or track.shape[1] != 3 or not np.all(np.isfinite(track)):
                    _fail(f"{path}.track", "expected (F, 3) finite positions")
            subjects.append(SceneSubject(item["name"], position, low, high, track))
        camera = data.get("camera")
        c2w = K = None
        if camera is not None:
            if not isinstance(camera, dict):
                _fail("scene.camera", "expected an object or null")
            c2w = np.asarray(camera.get("c2w"), dtype=np.float64)
            if c2w.shape != (4, 4) or not np.all(np.isfinite(c2w)):
                _fail("scene.camera.c2w", "expected a finite 4x4 matrix")
            if camera.get("K") is not None:
                K = _vector("scene.camera.K", camera["K"], 4)
        frame_start = data.get("frame_start", 1)
        if isinstance(frame_start, bool) or not isinstance(frame_start, int):
            _fail("scene.frame_start", f"expected an integer, got {frame_start!r}")
        return cls(float(fps), (int(resolution[0]), int(resolution[1])), subjects, c2w, K,
                   frame_start)


@dataclass
class PlanRequest:
    """A shot list to plan."""

    prompt: str
    """The global prompt: what the sequence is about."""
    shots: list[ShotPrompt]
    """One entry per shot, in order."""
    scene: SceneContext | None = None
    """Scene context; None = a default subject at the origin of a Z-up world."""
    image: np.ndarray | None = None
    """Optional viewport image, uint8 (H, W, 3)."""
    seed: int = 0
    """Seed: the same request and seed give the same plan."""

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            _fail("prompt", "expected a string")
        if not self.shots:
            _fail("shots", "a plan needs at least one shot")
        for i, shot in enumerate(self.shots):
            if not isinstance(shot.prompt, str):
                _fail(f"shots[{i}].prompt", "expected a string")


@dataclass
class PlanResult:
    """A planned sequence and what the planner wants the user to know."""

    sequence: ShotSequence
    """The plan, validated; shot prompts and the global prompt carried over."""
    warnings: list[str] = field(default_factory=list)
    """E.g. ``shot_020: did not use "wobbly"``; also in ``sequence.metadata["planner"]``."""


class Planner(ABC):
    """A shot planner."""

    name: str
    """``grammar`` or ``learned``."""

    @abstractmethod
    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan every shot of ``request``; deterministic for ``request.seed``."""
