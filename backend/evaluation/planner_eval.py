"""Planner evaluation: plan every entry of a prompt file, label the plans, score the labels.

The prompt file is JSON Lines, one entry per line (blank lines and lines starting with ``#`` are
skipped)::

    {"id": "chef_push_in",
     "prompt": "A chef plates a dish in a busy kitchen.",
     "shots": [{"prompt": "the camera creeps closer to the chef",
                "expected": {"translation": "push_in", "rotation": "static", "zoom": "static"}}],
     "scene": {...}}

``scene`` is optional (the add-on's scene context, :meth:`SceneContext.from_dict`); a shot may
carry a ``name``. ``expected`` holds the shot's dominant labels (:mod:`motion_labels` classes).

Scoring (ShotVerse Track A / GenDoP): each planned shot is labelled frame by frame and smoothed
(:func:`~backend.planning.motion_labels.smooth_labels`); those per-frame labels are compared with
the shot's expected label repeated over the shot's frames, and the support-weighted F1
(:func:`~backend.evaluation.motion_f1.weighted_f1`) is taken per channel over an entry's frames
and over all frames of the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.evaluation.motion_f1 import CHANNELS, MotionF1, motion_f1
from backend.planning.base import Planner, PlanRequest, SceneContext, ShotPrompt
from backend.planning.motion_labels import (
    ROTATION_CLASSES,
    TRANSLATION_CLASSES,
    ZOOM_CLASSES,
    FrameLabels,
    Segment,
    dominant_labels,
    label_frames,
    segment_labels,
    segments_to_frames,
)

METHOD = ("per-frame labels of each planned shot (smoothed) against the shot's expected label "
          "repeated over its frames; support-weighted F1 (sklearn average='weighted')")
_CLASSES = {"translation": TRANSLATION_CLASSES, "rotation": ROTATION_CLASSES,
            "zoom": ZOOM_CLASSES}


class PromptFileError(ValueError):
    """A malformed prompt file; the message names the file, the line and the field."""


@dataclass
class EvalShot:
    """One shot of an entry."""

    prompt: str
    """The shot prompt."""
    expected: FrameLabels
    """The shot's expected dominant labels."""
    name: str | None = None
    """Optional shot name passed to the planner."""


@dataclass
class EvalEntry:
    """One line of the prompt file."""

    id: str
    """Unique id."""
    prompt: str
    """Global prompt."""
    shots: list[EvalShot]
    """Shots in order."""
    scene: dict[str, Any] | None = None
    """Optional scene context JSON."""
    line: int = 0
    """Line number in the file (1-based), for messages."""


def _entry(where: str, data: Any, line: int) -> EvalEntry:
    def fail(path: str, message: str) -> None:
        raise PromptFileError(f"{where}: {path}: {message}")

    if not isinstance(data, dict):
        fail("<line>", f"expected an object, got {type(data).__name__}")
    unknown = set(data) - {"id", "prompt", "shots", "scene"}
    if unknown:
        fail(sorted(unknown)[0], "unknown field (known: id, prompt, shots, scene)")
    for key in ("id", "prompt"):
        if not isinstance(data.get(key), str):
            fail(key, "expected a string")
    if not data["id"]:
        fail("id", "must not be empty")
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        fail("shots", "expected a non-empty list")
    parsed = []
    for i, shot in enumerate(shots):
        path = f"shots[{i}]"
        if not isinstance(shot, dict) or not isinstance(shot.get("prompt"), str):
            fail(path, "expected an object with a string 'prompt'")
        unknown = set(shot) - {"prompt", "expected", "name"}
        if unknown:
            fail(f"{path}.{sorted(unknown)[0]}", "unknown field (known: prompt, expected, name)")
        expected = shot.get("expected")
        if not isinstance(expected, dict):
            fail(f"{path}.expected", "expected an object {translation, rotation, zoom}")
        for channel in CHANNELS:
            value = expected.get(channel)
            if value not in _CLASSES[channel]:
                known = ", ".join(_CLASSES[channel][:8]) + (
                    ", ..." if len(_CLASSES[channel]) > 8 else "")
                fail(f"{path}.expected.{channel}", f"{value!r} is not a {channel} label "
                                                   f"(known: {known})")
        extra = set(expected) - set(CHANNELS)
        if extra:
            fail(f"{path}.expected.{sorted(extra)[0]}", "unknown field")
        name = shot.get("name")
        if name is not None and not isinstance(name, str):
            fail(f"{path}.name", "expected a string")
        parsed.append(EvalShot(shot["prompt"], FrameLabels(*(expected[c] for c in CHANNELS)),
                               name))
    scene = data.get("scene")
    if scene is not None:
        if not isinstance(scene, dict):
            fail("scene", "expected an object")
        try:
            SceneContext.from_dict(scene)
        except ValueError as error:
            raise PromptFileError(f"{where}: {error}") from None
    return EvalEntry(data["id"], data["prompt"], parsed, scene, line)


def load_prompts(path: str | Path) -> list[EvalEntry]:
    """Read and check a prompt file; errors name the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"{path}: no such file")
    entries: list[EvalEntry] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PromptFileError(f"{where}: not valid JSON: {error}") from None
        entry = _entry(where, data, number)
        if entry.id in seen:
            raise PromptFileError(f"{where}: id: {entry.id!r} already used on line "
                                  f"{seen[entry.id]}")
        seen[entry.id] = number
        entries.append(entry)
    if not entries:
        raise PromptFileError(f"{path}: no entries")
    return entries


@dataclass
class ShotResult:
    """One planned shot, labelled and scored."""

    name: str
    """Shot name in the plan."""
    prompt: str
    """Shot prompt."""
    expected: FrameLabels
    """Expected dominant labels."""
    segments: list[Segment]
    """Smoothed segments, indices into the shot's frames."""
    score: MotionF1
    """F1 of this shot's frames."""

    @property
    def predicted(self) -> list[FrameLabels]:
        """Smoothed per-frame labels."""
        return segments_to_frames(self.segments)

    @property
    def dominant(self) -> FrameLabels:
        """Most frequent predicted label per channel."""
        return dominant_labels(self.predicted)


@dataclass
class EntryResult:
    """One entry: its shots and the F1 over all their frames."""

    id: str
    """Entry id."""
    shots: list[ShotResult]
    """Per shot."""
    score: MotionF1
    """F1 over the entry's frames."""
    warnings: list[str] = field(default_factory=list)
    """The planner's warnings."""


@dataclass
class EvalReport:
    """All entries and the F1 over every frame of the file."""

    planner: str
    """Planner name."""
    prompts: str
    """Prompt file."""
    entries: list[EntryResult]
    """Per entry, in file order."""
    overall: MotionF1
    """F1 over all frames of all entries (GenDoP concatenates before scoring)."""

    @property
    def entry_mean(self) -> dict[str, float]:
        """Unweighted mean over entries of each channel's F1."""
        keys = ("translation", "rotation", "zoom", "mean", "joint")
        return {key: sum(e.score.as_dict()[key] for e in self.entries) / len(self.entries)
                for key in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "planner": self.planner, "prompts": self.prompts, "method": METHOD,
            "entries": len(self.entries), "shots": sum(len(e.shots) for e in self.entries),
            "overall": self.overall.as_dict(), "entry_mean": self.entry_mean,
            "results": [{
                "id": e.id, "f1": e.score.as_dict(), "warnings": e.warnings,
                "shots": [{"name": s.name, "prompt": s.prompt,
                           "expected": vars(s.expected), "dominant": vars(s.dominant),
                           "f1": s.score.as_dict(),
                           "segments": [vars(seg) for seg in s.segments]} for s in e.shots],
            } for e in self.entries],
        }


def evaluate_entry(planner: Planner, entry: EvalEntry, seed: int = 0) -> EntryResult:
    """Plan one entry, label each shot and score it against the expected labels."""
    scene = SceneContext.from_dict(entry.scene) if entry.scene is not None else None
    request = PlanRequest(entry.prompt, [ShotPrompt(s.prompt, s.name) for s in entry.shots],
                          scene=scene, seed=seed)
    result = planner.plan(request)
    sequence = result.sequence
    if len(sequence.shots) != len(entry.shots):
        raise ValueError(f"entry {entry.id!r}: asked for {len(entry.shots)} shots, the planner "
                         f"returned {len(sequence.shots)}")
    shots = []
    for asked, shot in zip(entry.shots, sequence.shots, strict=True):
        segments = segment_labels(label_frames(shot.c2w, shot.K, sequence.fps), sequence.fps)
        predicted = segments_to_frames(segments)
        shots.append(ShotResult(shot.name, asked.prompt, asked.expected, segments,
                                motion_f1(predicted, [asked.expected] * len(predicted))))
    predicted, expected = _frames(shots)
    return EntryResult(entry.id, shots, motion_f1(predicted, expected), list(result.warnings))


def _frames(shots: Sequence[ShotResult]) -> tuple[list[FrameLabels], list[FrameLabels]]:
    predicted: list[FrameLabels] = []
    expected: list[FrameLabels] = []
    for shot in shots:
        frames = shot.predicted
        predicted += frames
        expected += [shot.expected] * len(frames)
    return predicted, expected


def evaluate_planner(planner: Planner, entries: Sequence[EvalEntry], *, seed: int = 0,
                     prompts: str = "", on_entry: Callable[[EntryResult], None] | None = None,
                     ) -> EvalReport:
    """Evaluate ``planner`` on every entry; ``on_entry`` sees each result as it comes."""
    results = []
    for entry in entries:
        result = evaluate_entry(planner, entry, seed)
        results.append(result)
        if on_entry is not None:
            on_entry(result)
    predicted, expected = _frames([shot for result in results for shot in result.shots])
    return EvalReport(getattr(planner, "name", type(planner).__name__), prompts, results,
                      motion_f1(predicted, expected))
