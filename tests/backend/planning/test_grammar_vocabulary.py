"""Every vocabulary item of the grammar planner, planned and judged by its motion labels and
its geometry (issue 5's acceptance)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from backend.planning.base import PlanRequest, SceneContext, SceneSubject, ShotPrompt
from backend.planning.grammar import GrammarPlanner
from backend.planning.motion_labels import label_shot
from backend.shots import Shot

FPS = 24.0
W, H = 1280, 720


def plan_shot(prompt: str, scene: SceneContext | None = None, seed: int = 0) -> Shot:
    result = GrammarPlanner().plan(PlanRequest("", [ShotPrompt(prompt)], scene, seed=seed))
    assert result.warnings == [], result.warnings
    return result.sequence.shots[0]


def dominant(shot: Shot, fps: float = FPS) -> tuple[str, str, str]:
    """The (translation, rotation, zoom) labels covering most frames of the shot."""
    counts: Counter = Counter()
    for segment in label_shot(shot, fps):
        counts[(segment.translation, segment.rotation, segment.zoom)] += segment.num_frames
    return counts.most_common(1)[0][0]


def project(shot: Shot, point: np.ndarray) -> np.ndarray:
    """(N, 2) pixel positions of a world point through the shot's camera."""
    rotation, centre = shot.c2w[:, :3, :3], shot.c2w[:, :3, 3]
    local = np.einsum("nji,nj->ni", rotation, point - centre)
    fx, fy, cx, cy = shot.K.T
    return np.stack([fx * local[:, 0] / local[:, 2] + cx, fy * local[:, 1] / local[:, 2] + cy], 1)


def yaw_pitch(shot: Shot) -> tuple[np.ndarray, np.ndarray]:
    forward = shot.c2w[:, :3, 2]
    return (np.unwrap(np.arctan2(forward[:, 1], forward[:, 0])),
            np.arcsin(np.clip(forward[:, 2], -1, 1)))


def angular_speed(shot: Shot) -> np.ndarray:
    """(N - 1,) degrees per second between consecutive frames."""
    rotation = shot.c2w[:, :3, :3]
    relative = np.einsum("nji,njk->nik", rotation[:-1], rotation[1:])
    cosine = np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1, 1)
    return np.rad2deg(np.arccos(cosine)) * FPS


SUBJECT_POINT = np.array([0.0, 0.0, 0.9])  # the default subject's box centre


# --------------------------------------------------------------------------------------------
# Static, rotations, translations, zoom


@pytest.mark.parametrize("prompt", ["static shot", "locked-off", "the camera holds still"])
def test_static(prompt):
    shot = plan_shot(prompt)
    assert dominant(shot) == ("static", "static", "static")
    assert np.ptp(shot.c2w, axis=0).max() == 0 and np.ptp(shot.K, axis=0).max() == 0


@pytest.mark.parametrize(("prompt", "label"), [
    ("pan left", "pan_left"), ("pan right", "pan_right"),
    ("tilt up", "tilt_up"), ("tilt down", "tilt_down"),
    ("roll clockwise", "roll_cw"), ("roll counterclockwise", "roll_ccw"),
])
def test_rotations(prompt, label):
    shot = plan_shot(prompt)
    assert dominant(shot) == ("static", label, "static")
    assert np.ptp(shot.c2w[:, :3, 3], axis=0).max() < 1e-9  # the camera turns on the spot


@pytest.mark.parametrize(("prompt", "label"), [
    ("dolly in", "push_in"), ("push in", "push_in"), ("pull out", "pull_out"),
    ("dolly out", "pull_out"), ("truck left", "truck_left"), ("truck right", "truck_right"),
    ("pedestal up", "pedestal_up"), ("pedestal down", "pedestal_down"),
    ("boom up", "pedestal_up"), ("boom down", "pedestal_down"),
])
def test_translations(prompt, label):
    shot = plan_shot(prompt)
    assert dominant(shot) == (label, "static", "static")
    assert np.ptp(shot.c2w[:, :3, :3], axis=0).max() < 1e-9  # orientation held


@pytest.mark.parametrize(("prompt", "label", "sign"), [
    ("zoom in", "zoom_in", 1), ("zoom out", "zoom_out", -1)])
def test_zoom_changes_focal_only(prompt, label, sign):
    shot = plan_shot(prompt)
    assert dominant(shot) == ("static", "static", label)
    assert np.ptp(shot.c2w, axis=0).max() == 0
    assert np.all(np.sign(np.diff(shot.K[:, 0])) == sign)
    assert np.allclose(shot.K[:, 2:], [W / 2, H / 2])  # principal point stays centred


@pytest.mark.parametrize(("prompt", "labels"), [
    ("dolly zoom", ("push_in", "static", "zoom_out")),
    ("vertigo effect, pulling back", ("pull_out", "static", "zoom_in")),
    ("pull back while zooming in", ("pull_out", "static", "zoom_in")),
])
def test_dolly_zoom_keeps_subject_size(prompt, labels):
    shot = plan_shot(prompt)
    assert dominant(shot) == labels
    forward = shot.c2w[:, :3, 2]
    depth = np.einsum("ni,ni->n", SUBJECT_POINT - shot.c2w[:, :3, 3], forward)
    ratio = shot.K[:, 0] / depth
    assert np.ptp(ratio) / ratio.mean() < 1e-2
    assert np.ptp(depth) > 0.25 * depth.max()


# --------------------------------------------------------------------------------------------
# Orbit, crane, follow, whip, handheld


@pytest.mark.parametrize(("prompt", "labels", "degrees"), [
    ("orbit left", ("truck_left", "pan_right", "static"), 90),
    ("arc right around the subject", ("truck_right", "pan_left", "static"), 90),
    ("a full orbit to the left", ("truck_left", "pan_right", "static"), 360),
    ("orbit 180 degrees clockwise", ("truck_left", "pan_right", "static"), 180),
])
def test_orbit(prompt, labels, degrees):
    shot = plan_shot(prompt)
    assert dominant(shot) == labels
    centre = shot.c2w[:, :3, 3]
    radius = np.hypot(centre[:, 0], centre[:, 1])
    assert np.ptp(radius) < 1e-6 * radius.max() + 1e-9
    uv = project(shot, SUBJECT_POINT)
    assert np.abs(uv - [W / 2, H / 2]).max() < 1.0  # the subject stays centred
    azimuth = np.unwrap(np.arctan2(centre[:, 1], centre[:, 0]))
    swept = np.rad2deg(azimuth[-1] - azimuth[0])
    # Orbit left: the camera travels to its own left, clockwise seen from above.
    assert swept == pytest.approx(-degrees if "left" in labels[0] else degrees, abs=1)


@pytest.mark.parametrize(("prompt", "labels", "rises"), [
    ("crane up", ("pedestal_up", "tilt_down", "static"), True),
    ("crane down", ("pedestal_down", "tilt_up", "static"), False),
])
def test_crane_keeps_subject_framed(prompt, labels, rises):
    shot = plan_shot(prompt)
    translation, rotation, zoom = dominant(shot)
    assert labels[0] in translation.split("+") and (rotation, zoom) == labels[1:]
    height = shot.c2w[:, 2, 3]
    assert (height[-1] > height[0] + 0.5) if rises else (height[-1] < height[0] - 0.5)
    _, pitch = yaw_pitch(shot)
    assert (pitch[-1] < pitch[0] - 0.2) if rises else (pitch[-1] > pitch[0] + 0.2)
    uv = project(shot, SUBJECT_POINT)
    assert np.abs(uv - [W / 2, H / 2]).max() < 1.0


def runner_scene(track: bool = True) -> SceneContext:
    path = np.stack([np.linspace(0, 6, 200), np.zeros(200), np.zeros(200)], axis=1)
    runner = SceneSubject("runner", path[0], np.array([-0.3, -0.3, 0.0]),
                          np.array([0.3, 0.3, 1.8]), path if track else None)
    return SceneContext(fps=FPS, resolution=(W, H), subjects=[runner], frame_start=1)


@pytest.mark.parametrize("prompt", ["follow the runner", "tracking shot of the runner",
                                    "the camera keeps pace with the runner"])
def test_follow_keeps_a_constant_offset(prompt):
    scene = runner_scene()
    shot = plan_shot(prompt, scene)
    track = scene.subjects[0].track[shot.frame_start - 1:shot.frame_end]
    offset = shot.c2w[:, :3, 3] - track
    assert np.ptp(offset, axis=0).max() < 1e-9
    assert np.ptp(track[:, 0]) > 1.0  # the subject did move
    assert np.ptp(shot.c2w[:, :3, :3], axis=0).max() < 1e-9
    assert dominant(shot)[0] in ("truck_right", "truck_left")


def test_follow_without_track_warns():
    result = GrammarPlanner().plan(PlanRequest("", [ShotPrompt("follow the runner")],
                                               runner_scene(track=False)))
    assert any("follow" in warning and "track" in warning for warning in result.warnings)
    assert np.ptp(result.sequence.shots[0].c2w, axis=0).max() == 0


@pytest.mark.parametrize(("prompt", "label"), [("whip pan left", "pan_left"),
                                               ("whip pan to the right", "pan_right")])
def test_whip_pan_is_fast_and_large(prompt, label):
    shot = plan_shot(prompt)
    yaw, _ = yaw_pitch(shot)
    assert abs(np.rad2deg(yaw[-1] - yaw[0])) >= 80
    assert shot.num_frames / FPS <= 1.0  # a whip on its own is a short shot
    speed = angular_speed(shot)
    assert speed.max() > 200 and speed.mean() > 100
    assert dominant(shot) == ("static", label, "static")


def test_whip_pan_inside_a_longer_shot():
    shot = plan_shot("hold on the subject, whip pan to the right, 3 seconds")
    assert shot.num_frames == 72
    speed = angular_speed(shot)
    assert speed.max() > 200 and (speed > 60).sum() / FPS < 0.8
    assert np.all(speed[:10] == 0) and np.all(speed[-10:] == 0)  # holds around the whip
    assert "pan_right" in {segment.rotation for segment in label_shot(shot, FPS)}


def test_handheld_is_small_seeded_noise():
    static = plan_shot("static shot")
    first, again = plan_shot("handheld", seed=1), plan_shot("handheld", seed=1)
    other = plan_shot("handheld", seed=2)
    assert np.array_equal(first.c2w, again.c2w)
    assert not np.allclose(first.c2w, other.c2w)
    drift = np.linalg.norm(first.c2w[:, :3, 3] - static.c2w[:, :3, 3], axis=1)
    assert 1e-4 < drift.max() < 0.02
    relative = np.einsum("nji,njk->nik", static.c2w[:, :3, :3], first.c2w[:, :3, :3])
    angle = np.rad2deg(np.arccos(np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert 0.01 < angle.max() < 1.0
    assert {segment.rotation for segment in label_shot(first, FPS)} == {"static"}


def test_handheld_combines_with_a_move():
    shot = plan_shot("handheld push in on the subject", seed=3)
    assert dominant(shot)[0] == "push_in"


# --------------------------------------------------------------------------------------------
# Shot sizes and angles

SIZES = ["extreme wide shot", "wide shot", "full shot", "medium shot", "medium close-up",
         "close-up", "extreme close-up"]


def box_fraction(shot: Shot, low=(-0.25, -0.25, 0.0), high=(0.25, 0.25, 1.8)) -> float:
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                        for z in (low[2], high[2])])
    v = np.array([project(shot, corner)[0, 1] for corner in corners])
    return float(np.ptp(v) / H)


def test_shot_sizes_fill_more_of_the_frame_from_wide_to_close():
    fractions = [box_fraction(plan_shot(prompt)) for prompt in SIZES]
    assert all(a < b for a, b in itertools.pairwise(fractions)), fractions
    assert fractions[0] < 0.2 and 0.7 < fractions[2] < 1.0 and fractions[-1] > 5
    for prompt in SIZES:  # every size looks at the subject
        uv = project(plan_shot(prompt), np.array([0.0, 0.0, 1.0]))[0]
        assert abs(uv[0] - W / 2) < 1


@pytest.mark.parametrize("prompt", ["ews of the subject", "long shot", "mcu", "ECU",
                                    "tight close up", "establishing shot", "cowboy shot"])
def test_size_jargon_is_understood(prompt):
    result = GrammarPlanner().plan(PlanRequest("", [ShotPrompt(prompt)]))
    assert result.warnings == []
    assert result.sequence.metadata["planner"]["specs"][0]["sizes"]


def camera_pitch_and_height(prompt: str) -> tuple[float, float, np.ndarray]:
    shot = plan_shot(prompt)
    forward = shot.c2w[0, :3, 2]
    return float(np.rad2deg(np.arcsin(forward[2]))), float(shot.c2w[0, 2, 3]), shot.c2w[0]


def test_angles():
    eye_pitch, eye_height, _ = camera_pitch_and_height("eye level medium shot")
    low_pitch, low_height, _ = camera_pitch_and_height("low angle medium shot")
    worm_pitch, _, _ = camera_pitch_and_height("worm's-eye view medium shot")
    high_pitch, high_height, _ = camera_pitch_and_height("high angle medium shot")
    over_pitch, _, over = camera_pitch_and_height("overhead shot")
    assert abs(eye_pitch) < 1e-6
    assert low_pitch > 10 and low_height < eye_height  # below, looking up
    assert worm_pitch > low_pitch
    assert high_pitch < -10 and high_height > eye_height  # above, looking down
    assert over_pitch == pytest.approx(-90, abs=1e-6)  # straight down
    assert np.allclose(over[:2, 3], 0, atol=1e-6)  # right above the subject


@pytest.mark.parametrize(("prompt", "sign"), [("dutch angle", 1), ("dutch angle to the left", -1),
                                              ("canted frame", 1)])
def test_dutch_angle_rolls_the_camera(prompt, sign):
    shot = plan_shot(prompt)
    x_axis = shot.c2w[0, :3, 0]
    # Roll cw turns the camera's +x toward its +y (down): x dips below the horizon.
    assert np.sign(-x_axis[2]) == sign and abs(x_axis[2]) > np.sin(np.deg2rad(10))
    assert dominant(shot) == ("static", "static", "static")


# --------------------------------------------------------------------------------------------
# Speed, easing, duration


def test_speed_words_order_speeds():
    speeds = [angular_speed(plan_shot(p)).mean() for p in
              ("pan left very slowly", "pan left slowly", "pan left", "pan left fast",
               "a very fast pan left")]
    assert all(a < b for a, b in itertools.pairwise(speeds)), speeds
    for prompt in ("pan left very slowly", "a very fast pan left"):
        assert dominant(plan_shot(prompt))[1] == "pan_left"


def ends_and_middle(prompt: str) -> tuple[float, float, float]:
    speed = angular_speed(plan_shot(prompt))
    n = len(speed)
    return (speed[: n // 8].mean(), speed[n // 2 - n // 8: n // 2 + n // 8].mean(),
            speed[-(n // 8):].mean())


def test_easing():
    start, middle, end = ends_and_middle("pan right, ease in and out")
    assert start < 0.5 * middle and end < 0.5 * middle
    start, middle, end = ends_and_middle("pan right, ease in")
    assert start < middle < end
    start, middle, end = ends_and_middle("pan right, ease out")
    assert start > middle > end
    start, middle, end = ends_and_middle("pan right")
    assert start == pytest.approx(middle, rel=0.05) and end == pytest.approx(middle, rel=0.05)


@pytest.mark.parametrize(("prompt", "fps", "frames"), [
    ("pan left, 3 seconds", 24.0, 72), ("a 3-second tilt up", 24.0, 72),
    ("48 frames of a slow push in", 24.0, 48), ("hold for two seconds", 30.0, 60),
    ("zoom in over 2.5 s", 24.0, 60), ("static", 24.0, 96),
])
def test_durations(prompt, fps, frames):
    scene = SceneContext(fps=fps, resolution=(W, H))
    shot = plan_shot(prompt, scene)
    assert shot.num_frames == frames


def test_phases_run_in_sequence():
    shot = plan_shot("pan left for 2 seconds then tilt up for 1 second")
    assert shot.num_frames == 72
    segments = label_shot(shot, FPS)
    rotations = [segment.rotation for segment in segments]
    assert rotations == ["pan_left", "tilt_up"], segments
    assert segments[0].num_frames > segments[1].num_frames
