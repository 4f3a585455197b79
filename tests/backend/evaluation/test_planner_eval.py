"""Planner evaluation: the prompt file, scoring with test planners, file errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import expm

from backend.evaluation.motion_f1 import weighted_f1
from backend.evaluation.planner_eval import (
    EvalEntry,
    PromptFileError,
    evaluate_planner,
    load_prompts,
)
from backend.planning import motion_labels as ml
from backend.planning.base import (
    DEFAULT_FPS,
    DEFAULT_RESOLUTION,
    Planner,
    PlanRequest,
    PlanResult,
)
from backend.planning.motion_labels import FrameLabels
from backend.shots import Shot, ShotSequence

ROOT = Path(__file__).resolve().parents[3]
PROMPTS = ROOT / "data" / "eval" / "planner_prompts.jsonl"

_AXES = {"push_in": (5, 1), "pull_out": (5, -1), "truck_right": (3, 1), "truck_left": (3, -1),
         "pedestal_down": (4, 1), "pedestal_up": (4, -1)}
_SPINS = {"tilt_up": (0, 1), "tilt_down": (0, -1), "pan_right": (1, 1), "pan_left": (1, -1),
          "roll_cw": (2, 1), "roll_ccw": (2, -1)}


def _path(labels: FrameLabels, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """A constant body-frame twist with the labels' motion: c2w (n, 4, 4), K (n, 4)."""
    twist = np.zeros(6)  # [ω (rad/s), v (m/s)] in camera axes
    if labels.translation != "static":
        for part in labels.translation.split("+"):
            index, sign = _AXES[part]
            twist[index] = 0.8 * sign
    if labels.rotation != "static":
        index, sign = _SPINS[labels.rotation]
        twist[index] = np.deg2rad(20.0) * sign
    w, v = twist[:3], twist[3:]
    hat = np.array([[0, -w[2], w[1], v[0]], [w[2], 0, -w[0], v[1]], [-w[1], w[0], 0, v[2]],
                    [0, 0, 0, 0]])
    c2w = np.stack([expm(hat * i / fps) for i in range(n)])
    rate = {"zoom_in": 0.2, "zoom_out": -0.2, "static": 0.0}[labels.zoom]
    focal = 1000.0 * np.exp(rate * np.arange(n) / fps)
    K = np.stack([focal, focal, np.full(n, 640.0), np.full(n, 360.0)], axis=1)
    return c2w, K


class ScriptedPlanner(Planner):
    """A test double: moves each shot as a script (prompt -> labels) says, else holds still."""

    name = "scripted"

    def __init__(self, script: dict[str, FrameLabels], seconds: float = 2.0) -> None:
        self.script = script
        self.seconds = seconds

    def plan(self, request: PlanRequest) -> PlanResult:
        fps = request.scene.fps if request.scene else DEFAULT_FPS
        resolution = request.scene.resolution if request.scene else DEFAULT_RESOLUTION
        n = round(self.seconds * fps)
        shots = []
        for i, asked in enumerate(request.shots):
            labels = self.script.get(asked.prompt, FrameLabels("static", "static", "static"))
            c2w, K = _path(labels, n, fps)
            shots.append(Shot(asked.name or f"shot_{10 * (i + 1):03d}", "Camera", 1 + i * n,
                              (i + 1) * n, c2w, K, asked.prompt))
        return PlanResult(ShotSequence(fps, resolution, shots, request.prompt).validate())


def _script(entries: list[EvalEntry]) -> dict[str, FrameLabels]:
    return {shot.prompt: shot.expected for entry in entries for shot in entry.shots}


def test_the_prompt_file() -> None:
    entries = load_prompts(PROMPTS)
    assert len(entries) >= 60
    sizes = [len(entry.shots) for entry in entries]
    assert sizes.count(1) >= 20 and {2, 3, 4} <= set(sizes) and max(sizes) <= 4
    assert any(entry.scene for entry in entries)
    shots = [shot for entry in entries for shot in entry.shots]
    for channel, classes in (("translation", ml.TRANSLATION_CLASSES),
                             ("rotation", ml.ROTATION_CLASSES), ("zoom", ml.ZOOM_CLASSES)):
        used = {getattr(shot.expected, channel) for shot in shots}
        assert used <= set(classes)
        assert len(used) >= 3  # every channel has more than one motion to get right


def test_a_planner_that_does_what_is_asked_scores_one() -> None:
    """Every expected label of the file is one the labeller gives to that motion."""
    entries = load_prompts(PROMPTS)
    report = evaluate_planner(ScriptedPlanner(_script(entries)), entries,
                              prompts=str(PROMPTS))
    assert report.overall.as_dict() == pytest.approx(
        {"translation": 1.0, "rotation": 1.0, "zoom": 1.0, "mean": 1.0, "joint": 1.0,
         "frames": report.overall.frames})
    assert [e.id for e in report.entries] == [e.id for e in entries]
    for entry in report.entries:
        for shot in entry.shots:
            assert shot.dominant == shot.expected
    data = json.loads(json.dumps(report.as_dict()))
    assert data["entries"] == len(entries) and data["overall"]["mean"] == 1.0


def test_a_planner_that_never_moves() -> None:
    entries = load_prompts(PROMPTS)[:10]
    report = evaluate_planner(ScriptedPlanner({}), entries)
    shots = [shot for entry in report.entries for shot in entry.shots]
    assert {(s.translation, s.rotation, s.zoom) for shot in shots for s in shot.segments} == {
        ("static", "static", "static")}
    expected = [shot.expected.translation for shot in shots for _ in shot.predicted]
    assert report.overall.frames == len(expected)
    assert report.overall.translation == pytest.approx(weighted_f1(["static"] * len(expected),
                                                                   expected))
    assert report.overall.translation < 1.0 and report.overall.rotation < 1.0
    hold = next(e for e in report.entries if e.id == "hold_face")
    assert hold.score.mean == 1.0


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = json.dumps({"id": "a", "prompt": "p", "shots": [
    {"prompt": "push in", "expected": {"translation": "push_in", "rotation": "static",
                                       "zoom": "static"}}]})


@pytest.mark.parametrize(("line", "fragment"), [
    ("{not json", ":2: not valid JSON"),
    (GOOD, ":2: id: 'a' already used on line 1"),
    (GOOD.replace('"push_in"', '"dolly_in"'),
     ":2: shots[0].expected.translation: 'dolly_in' is not a translation label"),
    (GOOD.replace('"rotation": "static", ', ""), ":2: shots[0].expected.rotation: None"),
    (json.dumps({"id": "b", "prompt": "p", "shots": []}), ":2: shots: expected a non-empty list"),
    (GOOD.replace('"id": "a"', '"id": "b", "scene": {"fps": -1}'), ":2: scene.fps"),
    (GOOD.replace('"id": "a"', '"id": "b", "extra": 1'), ":2: extra: unknown field"),
])
def test_prompt_file_errors_name_the_line_and_field(tmp_path: Path, line: str,
                                                    fragment: str) -> None:
    path = _write(tmp_path, GOOD, line)
    with pytest.raises(PromptFileError) as error:
        load_prompts(path)
    assert f"{path}{fragment}" in str(error.value)


def test_prompt_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    entries = load_prompts(_write(tmp_path, "# a comment", "", GOOD))
    assert [(e.id, e.line) for e in entries] == [("a", 3)]
    with pytest.raises(PromptFileError, match="no entries"):
        load_prompts(_write(tmp_path, "# nothing"))
    with pytest.raises(PromptFileError, match="no such file"):
        load_prompts(tmp_path / "missing.jsonl")


def test_a_planner_returning_too_few_shots_is_an_error() -> None:
    class OneShot(ScriptedPlanner):
        def plan(self, request: PlanRequest) -> PlanResult:
            result = super().plan(request)
            result.sequence.shots = result.sequence.shots[:1]
            return result

    entry = next(e for e in load_prompts(PROMPTS) if len(e.shots) > 1)
    with pytest.raises(ValueError, match=f"entry '{entry.id}'"):
        evaluate_planner(OneShot({}), [entry])
