"""Plain language counts as much as jargon: shots described the way people describe them, and
the warnings for what the planner did not understand."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from backend.planning.base import PlanRequest, PlanResult, SceneContext, SceneSubject, ShotPrompt
from backend.planning.grammar import GrammarPlanner
from backend.planning.motion_labels import label_shot
from backend.shots import Shot

FPS = 24.0


def subject(name: str, x: float, y: float, size=(0.5, 0.5, 1.8), track=None) -> SceneSubject:
    half = np.array([size[0] / 2, size[1] / 2, 0.0])
    position = np.array([x, y, 0.0])
    return SceneSubject(name, position, position - half,
                        position + half + np.array([0, 0, size[2]]), track)


def kitchen() -> SceneContext:
    runner = np.stack([np.linspace(-4, 4, 400), np.full(400, 6.0), np.zeros(400)], axis=1)
    return SceneContext(fps=FPS, resolution=(1280, 720), subjects=[
        subject("Chef", 0, 0), subject("Fountain.001", 8, 2, (3, 3, 1.2)),
        subject("Statue", -6, 3, (1, 1, 2.5)), subject("HeroCar", 4, -6, (4.5, 1.9, 1.5)),
        subject("Runner", -4, 6, track=runner), subject("Dog", 2, 8, (0.8, 0.3, 0.6), runner),
    ])


def plan(prompt: str, scene: SceneContext | None = None) -> PlanResult:
    return GrammarPlanner().plan(PlanRequest("", [ShotPrompt(prompt)], scene or kitchen()))


def dominant(shot: Shot) -> tuple[str, str, str]:
    counts: Counter = Counter()
    for segment in label_shot(shot, FPS):
        counts[(segment.translation, segment.rotation, segment.zoom)] += segment.num_frames
    return counts.most_common(1)[0][0]


# (prompt, expected translation part or None, rotation or None, zoom or None)
PARAPHRASES = [
    ("the camera creeps closer to the chef", "push_in", "static", "static"),
    # Two size words that name one framing do not turn a push in into a move out to the second.
    ("Wide establishing shot of the chef, the camera slowly pushes in", "push_in", "static",
     "static"),
    ("slowly move in on his face", "push_in", "static", "static"),
    ("we slowly approach the chef", "push_in", "static", "static"),
    ("get closer and closer to the statue", "push_in", "static", "static"),
    ("the camera inches forward", "push_in", "static", "static"),
    ("head towards the chef", "push_in", "static", "static"),
    ("back away from the chef", "pull_out", "static", "static"),
    ("the shot pulls back to reveal the kitchen", "pull_out", "static", "static"),
    ("camera moves away from the chef", "pull_out", "static", "static"),
    ("retreat slowly", "pull_out", "static", "static"),
    ("the camera drifts to the left", "truck_left", "static", "static"),
    ("slide right along the counter", "truck_right", "static", "static"),
    ("crab to the left", "truck_left", "static", "static"),
    ("the camera glides sideways to the right", "truck_right", "static", "static"),
    ("rise up above the chef", "pedestal_up", "static", "static"),
    ("the camera slowly lifts", "pedestal_up", "static", "static"),
    ("sink down to the floor", "pedestal_down", "static", "static"),
    ("lower the camera to knee height", "pedestal_down", "static", "static"),
    ("drop down", "pedestal_down", "static", "static"),
    ("glance down at the floor", "static", "tilt_down", "static"),
    ("look up at the sky", "static", "tilt_up", "static"),
    ("pan up to the top of the statue", "static", "tilt_up", "static"),
    ("the camera nods down to the plate", "static", "tilt_down", "static"),
    ("turn to the right", "static", "pan_right", "static"),
    ("swing the camera left", "static", "pan_left", "static"),
    ("take a look to the left", "static", "pan_left", "static"),
    ("sweep across the room to the right", "static", "pan_right", "static"),
    ("spin the camera clockwise", "static", "roll_cw", "static"),
    ("rotate the frame anticlockwise", "static", "roll_ccw", "static"),
    ("the view widens", "static", "static", "zoom_out"),
    ("punch in on his eyes", "static", "static", "zoom_in"),
    ("zoom into the chef's hands", "static", "static", "zoom_in"),
    ("the camera climbs and looks down at the chef", "pedestal_up", "tilt_down", "static"),
    ("push in slowly while panning left", "push_in", "pan_left", "static"),
    ("slowly creeping in on the chef, smoothly", "push_in", "static", "static"),
    ("we pull away from the statue", "pull_out", "static", "static"),
    ("bring the camera closer to the chef", "push_in", "static", "static"),
    ("gently dolly back", "pull_out", "static", "static"),
    ("slowly turn the camera to the left", "static", "pan_left", "static"),
    ("tilt the camera toward the ground", "static", "tilt_down", "static"),
    ("pan from left to right", "static", "pan_right", "static"),
    ("tilt from the floor up to the ceiling", "static", "tilt_up", "static"),
    ("let the camera spin slowly counterclockwise", "static", "roll_ccw", "static"),
    ("the horizon tilts to the right", "static", "roll_cw", "static"),
    ("slowly widen out to show the kitchen", "static", "static", "zoom_out"),
    ("zoom way in on the chef", "static", "static", "zoom_in"),
    ("crane down to the chef, keeping the camera level", "pedestal_down", "static", "static"),
    ("rise up and forward over the table at the same time", "push_in+pedestal_up", "static",
     "static"),
    ("move back and up at once", "pull_out+pedestal_up", "static", "static"),
    ("the camera doesn't move", "static", "static", "static"),
    ("walk down the hall", "push_in", "static", "static"),
]


@pytest.mark.parametrize(("prompt", "translation", "rotation", "zoom"), PARAPHRASES)
def test_paraphrases(prompt, translation, rotation, zoom):
    result = plan(prompt)
    assert result.warnings == []
    labels = dominant(result.sequence.shots[0])
    # The expected axes must all move (the labeller may add a slower one near its threshold).
    assert set(translation.split("+")) <= set(labels[0].split("+")), labels
    assert labels[1:] == (rotation, zoom), labels


def fountain_point(scene: SceneContext) -> np.ndarray:
    fountain = scene.subjects[1]
    return (fountain.bbox_min + fountain.bbox_max) / 2


@pytest.mark.parametrize("prompt", ["go around the fountain", "circle the fountain slowly",
                                    "walk around the fountain", "a slow 360 around the fountain",
                                    "the camera revolves around the fountain"])
def test_going_around_a_named_subject_orbits_it(prompt):
    scene = kitchen()
    result = plan(prompt, scene)
    assert result.warnings == []
    shot = result.sequence.shots[0]
    assert result.sequence.metadata["planner"]["specs"][0]["resolved"]["subject"] == "Fountain.001"
    centre = fountain_point(scene)
    offset = shot.c2w[:, :2, 3] - centre[:2]
    radius = np.linalg.norm(offset, axis=1)
    assert np.ptp(radius) < 1e-6 * radius.max()
    azimuth = np.unwrap(np.arctan2(offset[:, 1], offset[:, 0]))
    assert abs(azimuth[-1] - azimuth[0]) > np.deg2rad(40)
    forward = shot.c2w[:, :3, 2]
    to_target = centre[:2] - shot.c2w[:, :2, 3]
    heading = np.arctan2(forward[:, 1], forward[:, 0]) - np.arctan2(to_target[:, 1],
                                                                   to_target[:, 0])
    assert np.abs(np.angle(np.exp(1j * heading))).max() < 1e-6  # always faces the fountain


@pytest.mark.parametrize("prompt", ["follow the runner", "stay with the dog as it runs",
                                    "as the runner sprints past, the camera follows"])
def test_following_paraphrases_follow_the_track(prompt):
    scene = kitchen()
    result = plan(prompt, scene)
    assert result.warnings == []
    shot = result.sequence.shots[0]
    name = result.sequence.metadata["planner"]["specs"][0]["resolved"]["subject"]
    track = next(s.track for s in scene.subjects if s.name == name)
    offset = shot.c2w[:, :3, 3] - track[:shot.num_frames]
    assert np.ptp(offset, axis=0).max() < 1e-9 and np.ptp(track[:shot.num_frames, 0]) > 0.5


@pytest.mark.parametrize("prompt", [
    "the chef chops onions in a busy kitchen", "a woman walks left across the street",
    "the chef turns around and looks up at the clock", "rain falls on the city at night",
    "the sun rises over the mountains", "the dog follows the chef into the kitchen",
    "she tilts her head and laughs", "a truck drives down the road",
])
def test_content_descriptions_are_not_camera_moves(prompt):
    result = plan(prompt)
    shot = result.sequence.shots[0]
    assert np.ptp(shot.c2w, axis=0).max() == 0 and np.ptp(shot.K, axis=0).max() == 0
    # Nothing in them was taken for a camera word: the only warning is the missing instruction.
    assert result.warnings == ["shot_010: no camera instruction; the shot is static"]


@pytest.mark.parametrize(("prompt", "named"), [
    ("the camera wobbles left", ["wobbles", "left"]),
    ("rack focus to the background, then pan left", ["rack focus"]),
    ("the camera zigzags through the crowd", ["zigzags"]),
    ("wiggle left", ["wiggle", "left"]),
    ("the camera moves", ["moves"]),
    ("slow motion shot of the chef", ["slow motion"]),
    ("pan left with a fisheye lens", ["fisheye"]),
])
def test_unused_camera_words_are_named(prompt, named):
    result = plan(prompt)
    unused = [w for w in result.warnings if "did not use" in w]
    assert len(unused) == 1
    assert unused[0] == "shot_010: did not use " + ", ".join(f'"{word}"' for word in named)
    assert result.sequence.metadata["planner"]["warnings"] == result.warnings


def test_understood_words_leave_no_warning():
    result = plan("a slow and steady push in on the chef as he plates the dish, 3 seconds")
    assert result.warnings == []
    assert dominant(result.sequence.shots[0])[0] == "push_in"


def test_no_camera_instruction_is_static_with_a_warning():
    result = plan("the chef tastes the soup")
    assert result.warnings == ["shot_010: no camera instruction; the shot is static"]
    shot = result.sequence.shots[0]
    assert dominant(shot) == ("static", "static", "static")


def test_framing_alone_is_an_instruction():
    result = plan("close-up of the chef")
    assert result.warnings == []
