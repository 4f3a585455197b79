"""The grammar planner as a whole: multi-shot layout in one world frame, the 180-degree rule,
the scene camera, timing, determinism, validity, metadata and the planner registry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.planning import PLANNERS, get_planner
from backend.planning import grammar_camera as cam
from backend.planning.base import PlanRequest, SceneContext, SceneSubject, ShotPrompt
from backend.planning.grammar import GrammarPlanner
from backend.planning.grammar_parse import parse_shot
from backend.shots import Shot, ShotSequence

W, H = 1280, 720


HALF, UP = np.array([0.25, 0.25, 0.0]), np.array([0.0, 0.0, 1.8])


def person(name: str, x: float, y: float) -> SceneSubject:
    position = np.array([x, y, 0.0])
    return SceneSubject(name, position, position - HALF, position + HALF + UP)


def dialogue_scene(**kwargs) -> SceneContext:
    return SceneContext(subjects=[person("Alice", -1.0, 0.0), person("Bob", 1.2, 0.4)], **kwargs)


def plan(prompts: list[str], scene: SceneContext | None = None, seed: int = 0, names=None):
    names = names or [None] * len(prompts)
    shots = [ShotPrompt(p, n) for p, n in zip(prompts, names, strict=True)]
    return GrammarPlanner().plan(PlanRequest("a scene", shots, scene, seed=seed))


def centre_of(subject: SceneSubject) -> np.ndarray:
    return (subject.bbox_min + subject.bbox_max) / 2


def project(shot: Shot, point: np.ndarray, frame: int = 0) -> np.ndarray:
    local = shot.c2w[frame, :3, :3].T @ (point - shot.c2w[frame, :3, 3])
    fx, fy, cx, cy = shot.K[frame]
    return np.array([fx * local[0] / local[2] + cx, fy * local[1] / local[2] + cy, local[2]])


def camera_x(shot: Shot, point: np.ndarray) -> float:
    """Where ``point`` lies across the first frame's camera: > 0 to its right."""
    return float(shot.c2w[0, :3, 0] @ (point - shot.c2w[0, :3, 3]))


def side_of_line(a: np.ndarray, b: np.ndarray, point: np.ndarray) -> float:
    return float(np.sign((b - a)[0] * (point - a)[1] - (b - a)[1] * (point - a)[0]))


# --------------------------------------------------------------------------------------------
# Multi-shot layout


def test_four_shots_back_to_back_in_one_world_frame():
    scene = SceneContext(fps=30.0, frame_start=101, subjects=[
        person("Chef", 0, 0), SceneSubject("Fountain", np.array([6.0, 3.0, 0.0]),
                                           np.array([4.5, 1.5, 0.0]), np.array([7.5, 4.5, 1.2]))])
    result = plan(["wide shot of the fountain", "close-up of the chef, 2 seconds",
                   "orbit around the fountain", "the camera cranes up over the chef"], scene)
    assert result.warnings == []
    sequence = result.sequence
    assert [s.name for s in sequence.shots] == ["shot_010", "shot_020", "shot_030", "shot_040"]
    assert sequence.shots[0].frame_start == 101 and sequence.fps == 30.0
    for before, after in itertools.pairwise(sequence.shots):
        assert after.frame_start == before.frame_end + 1
    assert sequence.shots[1].num_frames == 60
    # Every shot looks at the subject it names, where that subject stands in the shared world.
    for shot, name in zip(sequence.shots, ["Fountain", "Chef", "Fountain", "Chef"], strict=True):
        subject = next(s for s in scene.subjects if s.name == name)
        u, _, depth = project(shot, centre_of(subject))
        assert depth > 0 and abs(u - W / 2) < 1
        top = project(shot, centre_of(subject) + UP / 2)
        bottom = project(shot, centre_of(subject) - UP / 2)
        assert top[1] < H / 2 < bottom[1]  # the subject spans the frame's centre line
    assert {o.name for o in sequence.objects} == {"Chef", "Fountain"}
    assert sequence.objects[0].frame_start == 101
    assert sequence.objects[0].frame_end == sequence.shots[-1].frame_end


def test_shot_reverse_shot_keeps_both_cameras_on_one_side_of_the_line():
    scene = dialogue_scene()
    alice, bob = (s.position for s in scene.subjects)
    result = plan(["medium close-up of Alice", "reverse shot", "over the shoulder of Alice, on Bob",
                   "close-up of Bob", "two shot of Alice and Bob", "Alice, from behind"], scene)
    assert result.warnings == []
    shots = result.sequence.shots
    specs = result.sequence.metadata["planner"]["specs"]
    subjects = [spec["resolved"]["subject"] for spec in specs]
    assert subjects[:4] == ["Alice", "Bob", "Bob", "Bob"]
    sides = {side_of_line(alice, bob, shot.c2w[0, :3, 3]) for shot in shots[:5]}
    assert len(sides) == 1 and 0 not in sides
    # The singles face each other's subject: Alice on screen looks toward the right of frame
    # where Bob would be and the reverse the other way (screen direction kept).
    alice_shot, bob_shot = shots[0], shots[1]
    assert camera_x(alice_shot, bob) > 0 > camera_x(bob_shot, alice)
    for shot, name in zip(shots[:4], subjects[:4], strict=True):
        target = centre_of(next(s for s in scene.subjects if s.name == name))
        assert abs(project(shot, target)[0] - W / 2) < 1
    # Over the shoulder: Alice is in front of the camera, nearer than Bob.
    ots = shots[2]
    assert 0 < project(ots, centre_of(scene.subjects[0]))[2] < project(ots, bob)[2]
    # "From behind" crosses nothing: it is the same single turned round, not a cut over the line.
    assert side_of_line(alice, bob, shots[5].c2w[0, :3, 3]) != 0


def test_cameras_keep_the_scene_cameras_side():
    c2w = np.eye(4)
    c2w[:3, :3] = [[-1, 0, 0], [0, 0, -1], [0, -1, 0]]  # looking along -Y from y = +5
    c2w[:3, 3] = [0.0, 5.0, 1.5]
    scene = dialogue_scene(camera_c2w=c2w)
    alice, bob = (s.position for s in scene.subjects)
    result = plan(["close-up of Alice", "close-up of Bob"], scene)
    for shot in result.sequence.shots:
        assert side_of_line(alice, bob, shot.c2w[0, :3, 3]) == side_of_line(alice, bob, c2w[:3, 3])


def test_first_shot_starts_from_the_scene_camera():
    c2w = np.eye(4)
    c2w[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # level, looking along +Y
    c2w[:3, 3] = [0.3, -4.0, 1.2]
    K = np.array([1500.0, 1500.0, 640.0, 360.0])
    scene = SceneContext(subjects=[person("Chef", 0, 0)], camera_c2w=c2w, camera_K=K)
    result = plan(["slow push in", "pan left"], scene)
    first, second = result.sequence.shots
    assert np.allclose(first.c2w[0], c2w) and np.allclose(first.K[0], K)
    assert np.all(np.diff(first.c2w[:, 1, 3]) > 0)  # pushing in along +Y
    assert not np.allclose(second.c2w[0], c2w)  # later shots frame the subject themselves
    assert second.c2w[0, 1, 3] < 0  # ...from the scene camera's side


def test_camera_angles_round_trip():
    rotations = Rotation.random(200, random_state=0).as_matrix()
    straight_down = cam.camera_rotations(np.array([0.7]), np.array([-np.pi / 2]), np.array([0.3]))
    for rotation in [*rotations, straight_down[0]]:
        angles = [np.array([a]) for a in cam.angles_from_rotation(rotation)]
        assert np.allclose(cam.camera_rotations(*angles)[0], rotation, atol=1e-12)


def test_no_scene_context_frames_a_subject_at_the_origin_of_a_z_up_world():
    shot = plan(["medium shot"]).sequence.shots[0]
    u, v, depth = project(shot, np.array([0.0, 0.0, 1.2]))
    assert depth > 0 and abs(u - W / 2) < 1 and abs(v - H / 2) < 0.15 * H
    assert np.allclose(shot.c2w[0, :3, 1], [0, 0, -1])  # image down is world -Z
    assert shot.c2w[0, 2, 3] > 0.5


def test_names_given_are_kept_and_duplicates_made_unique():
    result = plan(["pan left", "pan right", "tilt up"], names=["A", None, "A"])
    assert [s.name for s in result.sequence.shots] == ["A", "shot_020", "A_1"]
    assert [s.camera for s in result.sequence.shots] == ["Cam_A", "Cam_shot_020", "Cam_A_1"]


def test_start_and_end_sizes():
    result = plan(["start wide and push in to a close-up", "zoom from a medium shot to a close-up"])
    push, zoom = result.sequence.shots
    distance = np.linalg.norm(push.c2w[:, :3, 3] - [0, 0, 0.9], axis=1)
    assert distance[-1] < 0.3 * distance[0]
    assert zoom.K[-1, 0] / zoom.K[0, 0] == pytest.approx(4.5 / 1.6, rel=1e-3)


# --------------------------------------------------------------------------------------------
# Determinism, validity, metadata

PROMPTS = ["pan left", "slow push in on the chef", "handheld orbit right", "crane up, then zoom in",
           "dutch angle close-up", "whip pan right", "the camera wobbles", "follow the chef",
           "overhead shot, roll clockwise", "dolly zoom, 2 seconds", "pull out fast, ease out",
           "very slowly truck left 3 metres", "low angle, pedestal up", "tilt down 30 degrees"]


def test_deterministic_for_a_seed():
    scene = dialogue_scene()
    a = plan(PROMPTS[:6], scene, seed=5).sequence
    b = plan(PROMPTS[:6], scene, seed=5).sequence
    c = plan(PROMPTS[:6], scene, seed=6).sequence
    assert a.to_dict() == b.to_dict()
    handheld = [i for i, p in enumerate(PROMPTS[:6]) if "handheld" in p]
    for i, (x, y) in enumerate(zip(a.shots, c.shots, strict=True)):
        assert np.array_equal(x.c2w, y.c2w) == (i not in handheld)


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0, 60.0])
def test_every_plan_validates(fps):
    rng = np.random.default_rng(0)
    scene = SceneContext(fps=fps, resolution=(1920, 1080), frame_start=0,
                         subjects=[person("Chef", 0, 0), person("Alice", 2, 1)])
    for _ in range(8):
        prompts = [PROMPTS[i] for i in rng.choice(len(PROMPTS), size=4)]
        combined = " and ".join(PROMPTS[i] for i in rng.choice(len(PROMPTS), size=3))
        sequence = plan([*prompts, combined], scene).sequence
        ShotSequence.from_dict(sequence.to_dict())  # validated again through the JSON form
        for shot in sequence.shots:
            assert np.all(shot.c2w[:, 2, 3] >= -1e-9)  # never below the ground
            assert np.all(shot.K[:, 0] > 0)


def test_metadata_carries_specs_and_warnings():
    result = plan(["the camera wobbles", "slow pan left"])
    planner = result.sequence.metadata["planner"]
    assert planner["name"] == "grammar" and planner["warnings"] == result.warnings
    assert result.warnings == ['shot_010: did not use "wobbles"',
                               "shot_010: no camera instruction; the shot is static"]
    spec = planner["specs"][1]
    assert spec["shot"] == "shot_020"
    assert spec["phases"][0]["moves"][0]["kind"] == "pan"
    assert spec["phases"][0]["moves"][0]["speed"] == 0.5
    import json

    json.dumps(result.sequence.to_dict())  # JSON-ready


def test_global_prompt_handheld_applies_to_every_shot():
    shots = [ShotPrompt("static"), ShotPrompt("static")]
    plain = GrammarPlanner().plan(PlanRequest("", shots)).sequence.shots
    handheld = GrammarPlanner().plan(PlanRequest("a handheld documentary", shots)).sequence.shots
    assert all(np.ptp(shot.c2w, axis=0).max() == 0 for shot in plain)
    assert all(np.ptp(shot.c2w, axis=0).max() > 0 for shot in handheld)


def test_parse_shot_spec():
    spec = parse_shot("very slowly pan left 45 degrees then tilt up for 2 seconds")
    assert [(p.moves[0].kind, p.moves[0].direction) for p in spec.phases] == [
        ("pan", "left"), ("tilt", "up")]
    assert spec.phases[0].moves[0].amount == 45 and spec.phases[1].duration_s == 2
    assert spec.phases[0].moves[0].speed == pytest.approx(0.5 ** 1.5)


# --------------------------------------------------------------------------------------------
# Registry


def test_get_planner():
    assert PLANNERS == ("grammar", "learned")
    planner = get_planner("grammar")
    assert isinstance(planner, GrammarPlanner) and planner.name == "grammar"
    with pytest.raises(ValueError, match="--weights"):
        get_planner("learned")
    with pytest.raises(ValueError, match="no weights"):
        get_planner("grammar", weights="some/dir")
    with pytest.raises(ValueError, match="unknown planner 'magic'"):
        get_planner("magic")
