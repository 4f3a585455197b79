"""Motion labels: signs on peer presets, every class on synthetic paths, invariances, smoothing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.spatial.transform import Rotation

from backend.camera import se3
from backend.camera.formats import read_sequence, realestate10k
from backend.planning import motion_labels as ml
from backend.planning.motion_labels import FrameLabels, Segment
from backend.shots import Shot, ShotSequence
from tests.conftest import PEER_POSES

SETTINGS = settings(deadline=None, max_examples=30)
VIDEOX_FUN = PEER_POSES / "videox_fun"
CAMERACTRL = sorted((PEER_POSES / "cameractrl").glob("*.txt"))
STILL = FrameLabels("static", "static", "static")


def _hat(twist: np.ndarray) -> np.ndarray:
    """(6,) [ω, v] in camera axes -> (4, 4) se(3) matrix."""
    w, v = twist[:3], twist[3:]
    return np.array([[0, -w[2], w[1], v[0]], [w[2], 0, -w[0], v[1]], [-w[1], w[0], 0, v[2]],
                     [0, 0, 0, 0]], dtype=np.float64)


def screw_path(angular: np.ndarray, linear: np.ndarray, seconds: float, fps: float,
               base: np.ndarray | None = None) -> np.ndarray:
    """(N, 4, 4) poses moving with a constant body-frame twist: ω (rad/s), v (m/s)."""
    n = round(seconds * fps) + 1
    twist = _hat(np.concatenate([angular, linear]))
    local = np.stack([expm(twist * i / fps) for i in range(n)])
    return (np.eye(4) if base is None else base) @ local


def _direction(label: str) -> np.ndarray:
    """Unit camera-axis directions named by a translation label."""
    axes = {"push_in": (2, 1), "pull_out": (2, -1), "truck_right": (0, 1), "truck_left": (0, -1),
            "pedestal_down": (1, 1), "pedestal_up": (1, -1)}
    direction = np.zeros(3)
    if label != "static":
        for part in label.split("+"):
            axis, sign = axes[part]
            direction[axis] = sign
    return direction


_SPIN = {"static": (0, 0), "tilt_up": (0, 1), "tilt_down": (0, -1), "pan_right": (1, 1),
         "pan_left": (1, -1), "roll_cw": (2, 1), "roll_ccw": (2, -1)}


def _spin(label: str) -> np.ndarray:
    axis, sign = _SPIN[label]
    spin = np.zeros(3)
    spin[axis] = sign
    return spin


def _random_pose(seed: int, spread: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return se3.make_pose(Rotation.random(random_state=seed).as_matrix(),
                         rng.uniform(-spread, spread, 3))


def _translations(labels: list[FrameLabels]) -> set[str]:
    return {label.translation for label in labels}


# --------------------------------------------------------------------------------------------
# Classes


def test_class_lists() -> None:
    assert len(ml.TRANSLATION_CLASSES) == 27 == len(set(ml.TRANSLATION_CLASSES))
    assert "static" in ml.TRANSLATION_CLASSES
    assert "push_in+truck_left+pedestal_up" in ml.TRANSLATION_CLASSES
    assert "truck_left+push_in" not in ml.TRANSLATION_CLASSES  # fixed order: z, x, y
    assert len(ml.ROTATION_CLASSES) == 7 and len(ml.ZOOM_CLASSES) == 3


# --------------------------------------------------------------------------------------------
# Peer presets: VideoX-Fun names lateral trucks "Pan", a push-in "Zoom"


PRESETS = {
    "Pan_Left": "truck_left", "Pan_Right": "truck_right", "Pan_Up": "pedestal_up",
    "Pan_Down": "pedestal_down", "Pan_Left_Up": "truck_left+pedestal_up",
    "Pan_Left_Down": "truck_left+pedestal_down", "Pan_Right_Up": "truck_right+pedestal_up",
    "Pan_Right_Down": "truck_right+pedestal_down", "Zoom_In": "push_in", "Zoom_Out": "pull_out",
}


@pytest.mark.parametrize(("preset", "translation"), sorted(PRESETS.items()))
def test_videox_fun_translations(preset: str, translation: str) -> None:
    shot = read_sequence(VIDEOX_FUN / f"{preset}.txt", width=672, height=384, fps=16).shots[0]
    labels = ml.label_frames(shot.c2w, shot.K, 16)
    assert labels == [FrameLabels(translation, "static", "static")] * shot.num_frames
    assert ml.label_shot(shot, 16) == [Segment(0, shot.num_frames - 1, translation, "static",
                                               "static")]


@pytest.mark.parametrize(("preset", "rotation"), [("CW", "roll_cw"), ("ACW", "roll_ccw")])
def test_videox_fun_rolls(preset: str, rotation: str) -> None:
    shot = read_sequence(VIDEOX_FUN / f"{preset}.txt", width=672, height=384, fps=16).shots[0]
    assert ml.label_frames(shot.c2w, shot.K, 16) == [FrameLabels("static", rotation,
                                                                 "static")] * shot.num_frames


@pytest.mark.parametrize("path", CAMERACTRL, ids=lambda p: p.stem)
def test_cameractrl_clips_get_plausible_labels(path) -> None:
    timestamps = realestate10k.read(path).timestamps
    fps = 1e6 / float(np.median(np.diff(timestamps)))  # every 8th frame of a 30 fps video
    shot = read_sequence(path, width=640, height=360, fps=fps).shots[0]
    labels = ml.label_frames(shot.c2w, shot.K, fps)
    assert len(labels) == shot.num_frames
    assert _translations(labels) <= set(ml.TRANSLATION_CLASSES)
    assert {f.rotation for f in labels} <= set(ml.ROTATION_CLASSES)
    assert {f.zoom for f in labels} == {"static"}  # fixed intrinsics
    # Walk-throughs: the camera travels in (almost) every frame.
    assert sum(f.translation != "static" for f in labels) >= 0.8 * len(labels)
    segments = ml.label_shot(shot, fps)
    assert segments[0].start == 0 and segments[-1].end == shot.num_frames - 1
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(segments))


# --------------------------------------------------------------------------------------------
# Synthetic paths: every class, combinations, invariances


@pytest.mark.parametrize("translation", ml.TRANSLATION_CLASSES)
def test_every_translation_class(translation: str) -> None:
    c2w = screw_path(np.zeros(3), 0.8 * _direction(translation), 3.0, 24, _random_pose(7))
    assert ml.label_frames(c2w, None, 24) == [FrameLabels(translation, "static",
                                                          "static")] * len(c2w)


@pytest.mark.parametrize("rotation", ml.ROTATION_CLASSES)
def test_every_rotation_class(rotation: str) -> None:
    c2w = screw_path(np.deg2rad(20) * _spin(rotation), np.zeros(3), 3.0, 24, _random_pose(3))
    assert ml.label_frames(c2w, None, 24) == [FrameLabels("static", rotation,
                                                          "static")] * len(c2w)


def test_rotation_signs_in_camera_axes() -> None:
    """pan_right turns the forward axis toward +x, tilt_up toward -y; roll_cw turns +x to +y."""
    def last_axes(label: str) -> np.ndarray:
        return screw_path(np.deg2rad(20) * _spin(label), np.zeros(3), 1.0, 24)[-1, :3, :3]

    assert last_axes("pan_right")[0, 2] > 0.1   # forward (column z) gains +x
    assert last_axes("tilt_up")[1, 2] < -0.1    # forward gains -y
    assert last_axes("roll_cw")[1, 0] > 0.1     # right (column x) gains +y


def test_weak_axis_is_dropped_and_comparable_axes_combine() -> None:
    weak = screw_path(np.zeros(3), np.array([0.2, 0.0, 1.0]), 2.0, 24)
    assert _translations(ml.label_frames(weak, None, 24)) == {"push_in"}
    both = screw_path(np.zeros(3), np.array([-0.8, -0.7, 1.0]), 2.0, 24)
    assert _translations(ml.label_frames(both, None, 24)) == {"push_in+truck_left+pedestal_up"}


def test_orbit_is_a_truck_with_an_opposite_pan() -> None:
    """Circling a subject 3 m ahead while looking at it: the camera trucks right, pans left."""
    radius, speed = 3.0, 1.0  # m, m/s
    c2w = screw_path(np.array([0.0, -speed / radius, 0.0]), np.array([speed, 0.0, 0.0]), 4.0, 24)
    # The subject stays dead ahead at the radius.
    centre = c2w[:, :3, 3] + radius * c2w[:, :3, 2]
    np.testing.assert_allclose(centre, np.broadcast_to(centre[0], centre.shape), atol=1e-9)
    assert set(ml.label_frames(c2w, None, 24)) == {FrameLabels("truck_right", "pan_left",
                                                               "static")}


def test_tripod_drift_is_static() -> None:
    """A camera that jitters by a fraction of a millimetre stays static (the scale's floor)."""
    rng = np.random.default_rng(0)
    c2w = np.repeat(_random_pose(1)[None], 48, axis=0)
    c2w[:, :3, 3] += rng.normal(0, 3e-4, (48, 3))
    assert ml.segment_labels(ml.label_frames(c2w, None, 24), 24) == [Segment(0, 47, "static",
                                                                             "static", "static")]


_MAGNITUDES = st.sampled_from([-1.5, -0.5, 0.0, 0.5, 1.5])


@SETTINGS
@given(linear=st.tuples(_MAGNITUDES, _MAGNITUDES, _MAGNITUDES),
       spin=st.permutations([40.0, 12.0, 0.0]), signs=st.tuples(*[st.sampled_from([-1, 1])] * 3),
       base=st.integers(0, 2**31), world=st.integers(0, 2**31),
       scale=st.floats(0.6, 20.0), fps=st.sampled_from([12.0, 24.0, 30.0]))
def test_labels_do_not_depend_on_the_world_frame_or_scale(linear, spin, signs, base, world,
                                                          scale, fps) -> None:
    angular = np.deg2rad(np.array(spin) * np.array(signs))
    c2w = screw_path(angular, np.array(linear), 2.0, fps, _random_pose(base))
    labels = ml.label_frames(c2w, None, fps)
    moved = _random_pose(world, spread=100.0) @ c2w
    assert ml.label_frames(moved, None, fps) == labels
    scaled = c2w.copy()
    # A moving path spans at least 0.9 m (0.5 m/s, 2 s, curled by at most 40°/s), so the scaled
    # extent stays above the 0.5 m floor of the scale.
    scaled[:, :3, 3] *= scale
    assert ml.label_frames(scaled, None, fps) == labels


@SETTINGS
@given(translation=st.sampled_from(ml.TRANSLATION_CLASSES), base=st.integers(0, 2**31))
def test_pure_translation_labels_at_any_base_pose(translation: str, base: int) -> None:
    c2w = screw_path(np.zeros(3), 0.5 * _direction(translation), 2.0, 24, _random_pose(base))
    assert _translations(ml.label_frames(c2w, None, 24)) == {translation}


# --------------------------------------------------------------------------------------------
# Frame rate: thresholds are per second


def _storyboard(fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold 1 s, pan right 2 s, push in 2 s (eased), zoom in 2 s: c2w (N, 4, 4), K (N, 4)."""
    times = np.arange(round(7 * fps) + 1) / fps
    c2w = np.repeat(np.eye(4)[None], len(times), axis=0)
    focal = np.full(len(times), 1000.0)
    for i, t in enumerate(times):
        pan = np.deg2rad(25.0) * np.clip(t - 1.0, 0.0, 2.0)
        u = np.clip((t - 3.0) / 2.0, 0.0, 1.0)
        c2w[i, :3, :3] = Rotation.from_rotvec([0.0, pan, 0.0]).as_matrix()
        c2w[i, :3, 3] = c2w[i, :3, 2] * 2.0 * (3 * u**2 - 2 * u**3)
        focal[i] *= np.exp(0.25 * np.clip(t - 5.0, 0.0, 2.0))
    K = np.stack([focal, focal, np.full_like(focal, 640), np.full_like(focal, 360)], axis=1)
    return c2w, K


def test_same_motion_same_labels_at_24_and_48_fps() -> None:
    slow = ml.smooth_labels(ml.label_frames(*_storyboard(24), 24), 24)
    fast = ml.smooth_labels(ml.label_frames(*_storyboard(48), 48), 48)
    assert len(fast) == 2 * len(slow) - 1
    agree = np.mean([slow[i] == fast[2 * i] for i in range(len(slow))])
    assert agree >= 0.95
    segments = ml.segment_labels(ml.label_frames(*_storyboard(24), 24), 24)
    assert [(s.translation, s.rotation, s.zoom) for s in segments] == [
        ("static", "static", "static"), ("static", "pan_right", "static"),
        ("push_in", "static", "static"), ("static", "static", "zoom_in")]
    assert abs(segments[1].start - 24) <= 2 and abs(segments[2].start - 72) <= 3


@pytest.mark.parametrize("fps", [24.0, 48.0])
@pytest.mark.parametrize(("factor", "moving"), [(1.5, True), (0.5, False)])
def test_rotation_and_zoom_thresholds_are_per_second(fps: float, factor: float,
                                                     moving: bool) -> None:
    rate = np.deg2rad(factor * ml.ROTATION_THRESHOLD_DEG_S)
    c2w = screw_path(np.array([0.0, rate, 0.0]), np.zeros(3), 2.0, fps)
    focal = 800.0 * np.exp(factor * ml.ZOOM_THRESHOLD_PER_S * np.arange(len(c2w)) / fps)
    K = np.stack([focal, focal, np.full_like(focal, 320), np.full_like(focal, 240)], axis=1)
    labels = set(ml.label_frames(c2w, K, fps))
    expected = FrameLabels("static", "pan_right", "zoom_in") if moving else STILL
    assert labels == {expected}


@pytest.mark.parametrize("fps", [24.0, 48.0])
def test_translation_threshold_is_relative_to_the_path_per_second(fps: float) -> None:
    """A slow truck before a 3 m push: moving at 1.5x the threshold, static at 0.5x."""
    for factor, expected in ((1.5, "truck_right"), (0.5, "static")):
        slow = factor * ml.TRANSLATION_THRESHOLD * 3.0  # m/s; the extent is about 3 m
        first = screw_path(np.zeros(3), np.array([slow, 0.0, 0.0]), 2.0, fps)
        second = screw_path(np.zeros(3), np.array([0.0, 0.0, 1.5]), 2.0, fps, first[-1])
        c2w = np.concatenate([first, second[1:]])
        assert abs(ml.trajectory_scale(c2w) - 3.0) < 0.01
        labels = ml.label_frames(c2w, None, fps)
        middle = len(first) // 2
        assert labels[middle].translation == expected
        assert labels[len(first) + middle].translation == "push_in"


# --------------------------------------------------------------------------------------------
# Zoom, smoothing, shots and sequences


def test_zoom_from_focal_length() -> None:
    c2w = np.repeat(np.eye(4)[None], 49, axis=0)
    for rate, name in ((0.2, "zoom_in"), (-0.2, "zoom_out"), (0.0, "static")):
        focal = 1000.0 * np.exp(rate * np.arange(49) / 24)
        K = np.stack([focal, focal, np.full(49, 640.0), np.full(49, 360.0)], axis=1)
        assert set(ml.label_frames(c2w, K, 24)) == {FrameLabels("static", "static", name)}
    assert set(ml.label_frames(c2w, None, 24)) == {STILL}


def test_smoothing_merges_a_one_frame_blip() -> None:
    push = FrameLabels("push_in", "static", "static")
    blip = FrameLabels("truck_left", "pan_left", "zoom_in")
    labels = [push] * 20 + [blip] + [push] * 20
    assert ml.segment_labels(labels, 24) == [Segment(0, 40, "push_in", "static", "static")]
    # At the ends too, and a short run under min_duration_s goes to its neighbours.
    assert ml.segment_labels([blip, blip] + [push] * 30, 24) == [Segment(0, 31, "push_in",
                                                                         "static", "static")]
    pan = FrameLabels("static", "pan_right", "static")
    assert ml.smooth_labels([push] * 24 + [pan] * 5 + [push] * 24, 24) == [push] * 53


def test_smoothing_keeps_real_changes() -> None:
    push = FrameLabels("push_in", "static", "static")
    pan = FrameLabels("static", "pan_right", "static")
    segments = ml.segment_labels([push] * 24 + [pan] * 24, 24)
    assert [(s.start, s.end) for s in segments] == [(0, 23), (24, 47)]
    assert ml.segments_to_frames(segments) == [push] * 24 + [pan] * 24
    assert ml.segment_labels([], 24) == []
    assert ml.segment_labels([pan], 24) == [Segment(0, 0, "static", "pan_right", "static")]


def test_label_shot_and_sequence() -> None:
    push = screw_path(np.zeros(3), np.array([0.0, 0.0, 1.0]), 2.0, 24, _random_pose(5))
    pan = screw_path(np.array([0.0, -0.5, 0.0]), np.zeros(3), 1.0, 24, push[-1])
    K = np.tile([800.0, 800.0, 640.0, 360.0], (len(push), 1))
    shots = [Shot("shot_010", "Cam", 101, 100 + len(push), push, K),
             Shot("shot_020", "Cam", 200, 199 + len(pan), pan, K[:len(pan)])]
    sequence = ShotSequence(24.0, (1280, 720), shots).validate()
    labels = ml.label_sequence(sequence)
    assert labels == {
        "shot_010": [Segment(101, 100 + len(push), "push_in", "static", "static")],
        "shot_020": [Segment(200, 199 + len(pan), "static", "pan_left", "static")],
    }
    assert ml.label_shot(shots[0], 24) == labels["shot_010"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="c2w"):
        ml.label_frames(np.eye(4), None, 24)
    with pytest.raises(ValueError, match="fps"):
        ml.label_frames(np.repeat(np.eye(4)[None], 3, axis=0), None, 0)
    with pytest.raises(ValueError, match="K"):
        ml.label_frames(np.repeat(np.eye(4)[None], 3, axis=0), np.ones((2, 4)), 24)
    assert ml.label_frames(np.eye(4)[None], None, 24) == [STILL]
    assert ml.dominant_labels([STILL, STILL]) == STILL
