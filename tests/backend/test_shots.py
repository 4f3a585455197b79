"""The ShotSequence v1 contract: golden files, round trips, and every rejection the contract names.

Each invalid document is checked twice: ``backend.shots`` must reject it with a message naming the
field (and the shot or object), and the JSON Schema must reject it too wherever it can express the
rule, so that the add-on (which validates against the schema) and the backend agree.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from backend import shots
from backend.shots import (
    LensBlock,
    ObjectTrack,
    Shot,
    ShotSequence,
    ShotSequenceError,
    SubjectTrack,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(shots.SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture()
def doc() -> dict[str, Any]:
    """A fresh, mutable copy of the two-shot golden document."""
    return json.loads((GOLDEN / "two_shots.json").read_text())


def _project(c2w: np.ndarray, K: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Pinhole projection of a world point through a camera-to-world pose, OpenCV axes."""
    x, y, z = c2w[:3, :3].T @ (point - c2w[:3, 3])
    assert z > 0
    fx, fy, cx, cy = K
    return np.array([fx * x / z + cx, fy * y / z + cy])


def _yaw(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _full_sequence() -> ShotSequence:
    """A sequence that uses every optional field, with awkward floats (not short decimals)."""
    rng = np.random.default_rng(7)

    def poses(n: int, offset: float) -> np.ndarray:
        c2w = np.tile(np.eye(4), (n, 1, 1))
        for i in range(n):
            c2w[i, :3, :3] = _yaw(offset + 0.1 * i) @ np.diag([1.0, -1.0, -1.0])
            c2w[i, :3, 3] = rng.normal(size=3) / 3.0
        return c2w

    def intrinsics(n: int) -> np.ndarray:
        return np.column_stack([rng.uniform(300, 600, n), rng.uniform(300, 600, n),
                                rng.uniform(100, 200, n), rng.uniform(80, 120, n)])

    lens = LensBlock(lens=rng.uniform(20, 80, 4), shift_x=rng.normal(size=4) / 7,
                     shift_y=rng.normal(size=4) / 9, sensor_width=36.0 / 7, sensor_height=24.1,
                     sensor_fit="VERTICAL")
    subject = SubjectTrack(name="Hero", uv=rng.normal(size=(4, 2)) * 100 / 3,
                           visible=np.array([True, False, True, True]))
    rotations = np.stack([_yaw(a) for a in rng.uniform(-3, 3, 9)])
    return ShotSequence(
        fps=23.976, resolution=(320, 240), prompt="global ✓ prompt",
        shots=[
            Shot(name="a", camera="CamA", frame_start=-2, frame_end=1, c2w=poses(4, 0.3),
                 K=intrinsics(4), prompt="first", lens=lens, subjects=[subject]),
            Shot(name="b", camera="CamB", frame_start=5, frame_end=6, c2w=poses(2, 1.0),
                 K=intrinsics(2)),
        ],
        objects=[
            ObjectTrack(name="Hero", frame_start=-2, frame_end=6,
                        positions=rng.normal(size=(9, 3)) / 3, rotations=rotations,
                        bbox_min=np.array([-0.1, -0.2, -1 / 3]),
                        bbox_max=np.array([0.1, 0.2, 0.9])),
            ObjectTrack(name="Prop", frame_start=0, frame_end=0, positions=np.array([[1.0, 2, 3]])),
        ],
        metadata={"source": {"app": "test", "nested": [1, 2.5, None, "x"]}, "scene": "Scène"},
    ).validate()


def _assert_sequences_equal(a: ShotSequence, b: ShotSequence) -> None:
    assert (a.fps, tuple(a.resolution), a.prompt, a.metadata) == (
        b.fps, tuple(b.resolution), b.prompt, b.metadata)
    assert len(a.shots) == len(b.shots)
    for sa, sb in zip(a.shots, b.shots, strict=True):
        assert (sa.name, sa.camera, sa.prompt, sa.frame_start, sa.frame_end) == (
            sb.name, sb.camera, sb.prompt, sb.frame_start, sb.frame_end)
        assert np.array_equal(sa.c2w, sb.c2w)
        assert np.array_equal(sa.K, sb.K)
        assert (sa.lens is None) == (sb.lens is None)
        if sa.lens is not None:
            for name in ("lens", "shift_x", "shift_y"):
                assert np.array_equal(getattr(sa.lens, name), getattr(sb.lens, name))
            assert (sa.lens.sensor_width, sa.lens.sensor_height, sa.lens.sensor_fit) == (
                sb.lens.sensor_width, sb.lens.sensor_height, sb.lens.sensor_fit)
        assert [s.name for s in sa.subjects] == [s.name for s in sb.subjects]
        for ja, jb in zip(sa.subjects, sb.subjects, strict=True):
            assert np.array_equal(ja.uv, jb.uv)
            assert jb.visible.dtype == np.bool_
            assert np.array_equal(ja.visible, jb.visible)
    assert len(a.objects) == len(b.objects)
    for oa, ob in zip(a.objects, b.objects, strict=True):
        assert (oa.name, oa.frame_start, oa.frame_end) == (ob.name, ob.frame_start, ob.frame_end)
        assert np.array_equal(oa.positions, ob.positions)
        for name in ("rotations", "bbox_min", "bbox_max"):
            va, vb = getattr(oa, name), getattr(ob, name)
            assert (va is None) == (vb is None), name
            if va is not None:
                assert np.array_equal(va, vb), name


# --------------------------------------------------------------------------------------------
# Golden files


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_loads_and_matches_schema(path: Path, schema_validator) -> None:
    data = json.loads(path.read_text())
    schema_validator.validate(data)
    seq = shots.load(path)
    assert seq.shots
    # The golden files are written in the canonical form: to_dict reproduces them exactly.
    assert seq.to_dict() == data
    schema_validator.validate(seq.to_dict())


def test_golden_files_exist() -> None:
    assert {p.name for p in GOLDEN_FILES} >= {"minimal.json", "two_shots.json"}


def test_two_shots_known_content() -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    assert seq.fps == 24.0 and tuple(seq.resolution) == (640, 360)
    assert [s.name for s in seq.shots] == ["shot_010", "shot_020"]
    assert (seq.frame_start, seq.frame_end) == (1, 8)
    first = seq.shot("shot_010")
    assert first.num_frames == 5 and list(first.frames) == [1, 2, 3, 4, 5]
    c2w = first.c2w[0]
    np.testing.assert_allclose(c2w[:3, 3], [0.0, -5.0, 1.5])
    # OpenCV axes: +z (forward) looks along world +Y, +y (down) points to world -Z, +x right = +X.
    np.testing.assert_allclose(c2w[:3, 2], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(c2w[:3, 1], [0.0, 0.0, -1.0])
    np.testing.assert_allclose(c2w[:3, 0], [1.0, 0.0, 0.0])
    # A push in: the centre moves 0.1 m along the viewing direction per frame.
    np.testing.assert_allclose(np.diff(first.c2w[:, :3, 3], axis=0), [[0.0, 0.1, 0.0]] * 4,
                               atol=1e-12)
    # The lens block agrees with K: fx = lens / sensor_width * W (sensor fit AUTO, W > H).
    assert first.lens is not None
    np.testing.assert_allclose(first.lens.lens / first.lens.sensor_width * 640, first.K[:, 0])
    np.testing.assert_allclose(first.K[:, 2:], [[320.0, 180.0]] * 5)
    with pytest.raises(KeyError, match="shot_010"):
        seq.shot("nope")


def test_two_shots_subject_uv_is_the_projection_of_the_object() -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    hero = next(o for o in seq.objects if o.name == "Hero")
    checked = 0
    for shot in seq.shots:
        (subject,) = shot.subjects
        assert subject.name == "Hero"
        for i, frame in enumerate(shot.frames):
            point = hero.positions[frame - hero.frame_start]
            expected = _project(shot.c2w[i], shot.K[i], point)
            np.testing.assert_allclose(subject.uv[i], expected, atol=1e-9)
            inside = 0 <= expected[0] <= 640 and 0 <= expected[1] <= 360
            assert bool(subject.visible[i]) == inside
            checked += 1
    assert checked == 8
    np.testing.assert_allclose(seq.shots[0].subjects[0].uv[0], [320.0, 230.0])


def test_two_shots_second_shot_pans_left() -> None:
    """shot_020 turns its camera about world +Z (a pan); the centre stays put."""
    shot = shots.load(GOLDEN / "two_shots.json").shot("shot_020")
    np.testing.assert_allclose(shot.c2w[:, :3, 3], [[0.0, -4.0, 1.5]] * 3)
    forward = shot.c2w[:, :3, 2]
    headings = np.degrees(np.arctan2(forward[:, 1], forward[:, 0]))
    np.testing.assert_allclose(headings, [90.0, 100.0, 110.0], atol=1e-9)


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_is_exact_with_every_optional_field(tmp_path: Path, suffix: str) -> None:
    seq = _full_sequence()
    path = shots.save(seq, tmp_path / "sub" / f"seq{suffix}")
    assert path.suffix == suffix and path.is_file()
    back = shots.load(path)
    _assert_sequences_equal(seq, back)
    # And again: saving what was read changes nothing.
    again = shots.load(shots.save(back, tmp_path / f"again{suffix}"))
    _assert_sequences_equal(seq, again)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_golden_round_trip(tmp_path: Path, path: Path, suffix: str) -> None:
    seq = shots.load(path)
    _assert_sequences_equal(seq, shots.load(shots.save(seq, tmp_path / f"x{suffix}")))


def test_saved_json_matches_schema(tmp_path: Path, schema_validator) -> None:
    path = shots.save(_full_sequence(), tmp_path / "full.json")
    schema_validator.validate(json.loads(path.read_text()))


def test_to_dict_from_dict_round_trip() -> None:
    seq = _full_sequence()
    _assert_sequences_equal(seq, ShotSequence.from_dict(json.loads(json.dumps(seq.to_dict()))))


def test_save_refuses_an_invalid_sequence(tmp_path: Path) -> None:
    seq = _full_sequence()
    seq.shots[1].K[0, 0] = -1.0
    with pytest.raises(ShotSequenceError, match=r"shots\[1\] 'b'\.K\[0\]"):
        shots.save(seq, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_npz_without_meta_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, c2w=np.eye(4))
    with pytest.raises(ShotSequenceError, match="__meta__") as info:
        shots.load(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------------------------
# Rejections: the code names the field and the shot; the schema agrees where it can.

Mutation = Callable[[dict[str, Any]], None]


def _rejects(doc: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(ShotSequenceError) as info:
        ShotSequence.from_dict(doc)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _set(path: tuple, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _scale_rotation(factor: float) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        pose = np.array(doc["shots"][1]["c2w"][2])
        pose[:3, :3] *= factor
        doc["shots"][1]["c2w"][2] = pose.tolist()
    return mutate


def _drop_last(*path: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target = doc
        for key in path:
            target = target[key]
        target.pop()
    return mutate


def _mirror(doc: dict[str, Any]) -> None:
    pose = np.array(doc["shots"][0]["c2w"][3])
    pose[:3, 0] *= -1.0
    doc["shots"][0]["c2w"][3] = pose.tolist()


def _shift_second_shot(start: int) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        shot = doc["shots"][1]
        shot["frame_start"], shot["frame_end"] = start, start + 2
    return mutate


# (id, mutation, fragments the message must hold)
CODE_REJECTIONS: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("nan_c2w", _set(("shots", 0, "c2w", 2, 0, 3), math.nan),
     ("shots[0] 'shot_010'.c2w[2][0][3]", "not finite")),
    ("inf_c2w", _set(("shots", 1, "c2w", 0, 1, 1), math.inf),
     ("shots[1] 'shot_020'.c2w[0][1][1]", "not finite")),
    ("nan_K", _set(("shots", 1, "K", 1, 2), math.nan), ("shots[1] 'shot_020'.K[1][2]",)),
    ("inf_K", _set(("shots", 0, "K", 4, 0), -math.inf), ("shots[0] 'shot_010'.K[4][0]",)),
    ("nan_position", _set(("objects", 0, "positions", 7, 1), math.nan),
     ("objects[0] 'Hero'.positions[7][1]", "not finite")),
    ("inf_position", _set(("objects", 0, "positions", 0, 2), math.inf),
     ("objects[0] 'Hero'.positions[0][2]",)),
    ("nan_uv", _set(("shots", 0, "subjects", 0, "uv", 1, 0), math.nan),
     ("shots[0] 'shot_010'.subjects[0].uv[1][0]",)),
    ("nan_lens", _set(("shots", 0, "lens", "shift_x", 2), math.nan),
     ("shots[0] 'shot_010'.lens.shift_x[2]",)),
    ("scaled_rotation", _scale_rotation(1.001),
     ("shots[1] 'shot_020'.c2w[2]", "not orthonormal")),
    ("mirror", _mirror, ("shots[0] 'shot_010'.c2w[3]", "determinant -1")),
    ("bad_bottom_row", _set(("shots", 0, "c2w", 1, 3, 0), 0.5),
     ("shots[0] 'shot_010'.c2w", "bottom row")),
    ("fx_zero", _set(("shots", 1, "K", 2, 0), 0.0), ("shots[1] 'shot_020'.K[2]", "fx")),
    ("fy_negative", _set(("shots", 0, "K", 0, 1), -500.0), ("shots[0] 'shot_010'.K[0]", "fy")),
    ("short_c2w", _drop_last("shots", 0, "c2w"), ("shots[0] 'shot_010'.c2w", "(5, 4, 4)")),
    ("short_K", _drop_last("shots", 1, "K"), ("shots[1] 'shot_020'.K", "(3, 4)")),
    ("short_lens", _drop_last("shots", 0, "lens", "lens"), ("shots[0] 'shot_010'.lens.lens",)),
    ("short_shift_y", _drop_last("shots", 0, "lens", "shift_y"),
     ("shots[0] 'shot_010'.lens.shift_y",)),
    ("short_uv", _drop_last("shots", 1, "subjects", 0, "uv"),
     ("shots[1] 'shot_020'.subjects[0].uv", "(3, 2)")),
    ("short_visible", _drop_last("shots", 0, "subjects", 0, "visible"),
     ("shots[0] 'shot_010'.subjects[0].visible", "(5,)")),
    ("short_positions", _drop_last("objects", 0, "positions"),
     ("objects[0] 'Hero'.positions", "(8, 3)")),
    ("short_rotations", _drop_last("objects", 0, "rotations"),
     ("objects[0] 'Hero'.rotations", "(8, 3, 3)")),
    ("long_frame_range", _set(("shots", 0, "frame_end"), 6), ("shots[0] 'shot_010'.c2w",)),
    ("empty_shot", _set(("shots", 1, "frame_end"), 5),
     ("shots[1] 'shot_020'", "empty shot", "frame_end")),
    ("overlap", _shift_second_shot(5), ("shots[1] 'shot_020'.frame_start", "overlaps", "shot_010")),
    ("out_of_order", _shift_second_shot(-10), ("shots[1] 'shot_020'.frame_start", "shot_010")),
    ("duplicate_name", _set(("shots", 1, "name"), "shot_010"),
     ("shots[1] 'shot_010'.name", "duplicate")),
    ("unknown_subject", _set(("shots", 1, "subjects", 0, "name"), "Villain"),
     ("shots[1] 'shot_020'.subjects[0].name", "Villain")),
    ("object_rotation_scaled", _set(("objects", 0, "rotations", 3), [[2, 0, 0], [0, 1, 0],
                                                                      [0, 0, 1]]),
     ("objects[0] 'Hero'.rotations[3]", "not orthonormal")),
    ("bbox_inverted", _set(("objects", 0, "bbox_max"), [0.3, -0.5, 0.8]),
     ("objects[0] 'Hero'.bbox_max",)),
]


@pytest.mark.parametrize("mutate,fragments", [c[1:] for c in CODE_REJECTIONS],
                         ids=[c[0] for c in CODE_REJECTIONS])
def test_code_rejects(doc, mutate: Mutation, fragments: tuple[str, ...]) -> None:
    mutate(doc)
    _rejects(doc, *fragments)


def test_message_starts_with_the_field_path(doc) -> None:
    doc["shots"][0]["K"][2][1] = 0.0
    message = _rejects(doc)
    assert message.startswith("shots[0] 'shot_010'.K[2]:")


# Rejected by the code AND by the schema (what JSON Schema can express).
SCHEMA_REJECTIONS: list[tuple[str, Mutation, tuple[str, ...]]] = [
    ("unknown_format", _set(("format",), "shotbridge.shots"), ("format", "shotbridge.shots")),
    ("unknown_version", _set(("version",), 2), ("version", "2")),
    ("version_string", _set(("version",), "1"), ("version",)),
    ("version_bool", _set(("version",), True), ("version",)),
    ("typo_top_level", lambda d: d.__setitem__("Prompt", "x"), ("Prompt", "unknown field")),
    ("typo_C2W", lambda d: d["shots"][0].__setitem__("C2W", d["shots"][0].pop("c2w")),
     ("shots[0] 'shot_010'.C2W", "unknown field")),
    ("extra_shot_field", _set(("shots", 1, "fov"), 40.0),
     ("shots[1] 'shot_020'.fov", "unknown field")),
    ("typo_in_lens", lambda d: d["shots"][0]["lens"].__setitem__("focal", 1.0),
     ("shots[0] 'shot_010'.lens.focal",)),
    ("typo_in_object", lambda d: d["objects"][0].__setitem__("position", []),
     ("objects[0] 'Hero'.position", "unknown field")),
    ("missing_K", lambda d: d["shots"][1].pop("K"), ("shots[1] 'shot_020'.K", "missing")),
    ("missing_fps", lambda d: d.pop("fps"), ("fps", "missing")),
    ("missing_format", lambda d: d.pop("format"), ("format", "missing")),
    ("missing_version", lambda d: d.pop("version"), ("version", "missing")),
    ("missing_frame_end", lambda d: d["shots"][0].pop("frame_end"),
     ("shots[0] 'shot_010'.frame_end", "missing")),
    ("missing_positions", lambda d: d["objects"][0].pop("positions"),
     ("objects[0] 'Hero'.positions", "missing")),
    ("missing_visible", lambda d: d["shots"][0]["subjects"][0].pop("visible"),
     ("shots[0] 'shot_010'.subjects[0].visible", "missing")),
    ("pose_3x4", _set(("shots", 0, "c2w", 0), [[1, 0, 0, 0], [0, 0, 1, -5], [0, -1, 0, 1.5]]),
     ("shots[0] 'shot_010'.c2w", "rectangular")),
    ("all_poses_3x4", lambda d: [pose.pop() for pose in d["shots"][1]["c2w"]],
     ("shots[1] 'shot_020'.c2w", "(3, 4, 4)", "(3, 3, 4)")),
    ("pose_rows_of_3", _set(("shots", 1, "c2w", 0), [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]),
     ("shots[1] 'shot_020'.c2w",)),
    ("pose_flat", _set(("shots", 1, "c2w", 0), list(range(16))), ("shots[1] 'shot_020'.c2w",)),
    ("K_of_3", _set(("shots", 0, "K", 0), [500.0, 500.0, 320.0]), ("shots[0] 'shot_010'.K",)),
    ("position_of_2", _set(("objects", 0, "positions", 0), [0.0, 0.0]),
     ("objects[0] 'Hero'.positions",)),
    ("visible_as_ints", _set(("shots", 0, "subjects", 0, "visible"), [1, 1, 0, 1, 1]),
     ("shots[0] 'shot_010'.subjects[0].visible", "boolean")),
    ("no_shots", _set(("shots",), []), ("shots",)),
    ("fps_zero", _set(("fps",), 0), ("fps",)),
    ("fps_string", _set(("fps",), "24"), ("fps",)),
    ("resolution_of_3", _set(("resolution",), [640, 360, 3]), ("resolution",)),
    ("resolution_zero", _set(("resolution",), [0, 360]), ("resolution",)),
    ("empty_shot_name", _set(("shots", 1, "name"), ""), ("shots[1]", ".name")),
    ("frame_start_string", _set(("shots", 0, "frame_start"), "1"),
     ("shots[0] 'shot_010'.frame_start",)),
    ("bad_sensor_fit", _set(("shots", 0, "lens", "sensor_fit"), "DIAGONAL"),
     ("shots[0] 'shot_010'.lens.sensor_fit",)),
    ("negative_lens", _set(("shots", 0, "lens", "lens", 0), -28.0),
     ("shots[0] 'shot_010'.lens.lens",)),
    ("metadata_list", _set(("metadata",), []), ("metadata",)),
    ("prompt_null", _set(("shots", 0, "prompt"), None), ("shots[0] 'shot_010'.prompt",)),
]


@pytest.mark.parametrize("mutate,fragments", [c[1:] for c in SCHEMA_REJECTIONS],
                         ids=[c[0] for c in SCHEMA_REJECTIONS])
def test_code_and_schema_reject(doc, schema_validator, mutate: Mutation,
                                fragments: tuple[str, ...]) -> None:
    mutate(doc)
    _rejects(doc, *fragments)
    assert not schema_validator.is_valid(doc)


@pytest.mark.parametrize("mutate", [c[1] for c in CODE_REJECTIONS],
                         ids=[c[0] for c in CODE_REJECTIONS])
def test_schema_leaves_semantic_checks_to_the_code(doc, schema_validator,
                                                   mutate: Mutation) -> None:
    """What the schema cannot express (lengths against frame ranges, orthonormality, overlap,
    names across shots) it lets through: those checks exist only in the code, tested above."""
    mutate(doc)
    if any(math.isnan(v) or math.isinf(v) for v in _numbers(doc)):
        return  # not JSON at all; the schema never sees it
    schema_validator.validate(doc)


def _numbers(value: Any):
    if isinstance(value, float):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)


def test_typo_alongside_the_real_field_is_rejected(doc, schema_validator) -> None:
    doc["shots"][0]["C2W"] = copy.deepcopy(doc["shots"][0]["c2w"])
    _rejects(doc, "shots[0] 'shot_010'.C2W", "unknown field")
    assert not schema_validator.is_valid(doc)


def test_not_an_object(schema_validator) -> None:
    _rejects([1, 2], "<root>")  # type: ignore[arg-type]
    assert not schema_validator.is_valid([1, 2])


# --------------------------------------------------------------------------------------------
# Rotation tolerance, on the dataclasses directly


def _one_shot(c2w: np.ndarray) -> ShotSequence:
    n = len(c2w)
    return ShotSequence(fps=24.0, resolution=(64, 48), shots=[
        Shot(name="s", camera="c", frame_start=0, frame_end=n - 1, c2w=c2w,
             K=np.tile([50.0, 50.0, 32.0, 24.0], (n, 1)))])


def test_rotation_tolerance_is_1e_4() -> None:
    c2w = np.tile(np.eye(4), (3, 1, 1))
    c2w[:, :3, :3] = _yaw(0.4)
    _one_shot(c2w.copy()).validate()

    nudged = c2w.copy()
    nudged[1, :3, :3] *= 1 + 1e-6
    nudged[2, 0, 1] += 1e-6
    _one_shot(nudged).validate()

    scaled = c2w.copy()
    scaled[1, :3, :3] *= 1.001
    with pytest.raises(ShotSequenceError, match=r"shots\[0\] 's'\.c2w\[1\].*not orthonormal"):
        _one_shot(scaled).validate()

    sheared = c2w.copy()
    sheared[2, 0, 1] += 1e-3
    with pytest.raises(ShotSequenceError, match=r"c2w\[2\]"):
        _one_shot(sheared).validate()

    mirrored = c2w.copy()
    mirrored[0, :3, :3] = mirrored[0, :3, :3] @ np.diag([1.0, 1.0, -1.0])
    with pytest.raises(ShotSequenceError, match=r"c2w\[0\].*determinant -1"):
        _one_shot(mirrored).validate()


def test_validate_checks_shapes_of_built_sequences() -> None:
    seq = _full_sequence()
    seq.objects[0].bbox_max = None
    with pytest.raises(ShotSequenceError, match=r"objects\[0\] 'Hero'\.bbox_min"):
        seq.validate()
    seq = _full_sequence()
    seq.shots[0].lens.shift_x = seq.shots[0].lens.shift_x[:2]
    with pytest.raises(ShotSequenceError, match=r"shots\[0\] 'a'\.lens\.shift_x"):
        seq.validate()


# --------------------------------------------------------------------------------------------
# Files


def test_bad_json_text_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "shotbridge.shot_sequence", "version": 1,')
    with pytest.raises(ShotSequenceError, match="not valid JSON") as info:
        shots.load(path)
    assert str(path) in str(info.value)


def test_load_errors_name_the_file_and_the_field(tmp_path: Path, doc) -> None:
    doc["shots"][1]["c2w"][0][0][0] = math.nan
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(doc))  # Python writes NaN; the loader must refuse it
    with pytest.raises(ShotSequenceError) as info:
        shots.load(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "shots[1] 'shot_020'.c2w[0][0][0]" in message


def test_npz_load_validates(tmp_path: Path) -> None:
    seq = _full_sequence()
    path = shots.save(seq, tmp_path / "seq.npz")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["shots/0/c2w"] = arrays["shots/0/c2w"][:3]
    np.savez(path, **arrays)
    with pytest.raises(ShotSequenceError) as info:
        shots.load(path)
    assert str(path) in str(info.value) and "shots[0] 'a'.c2w" in str(info.value)


def test_scene_points_round_trip_and_are_checked(tmp_path):
    data = json.loads((GOLDEN / "two_shots.json").read_text())
    data["scene_points"] = [[0.0, 1.0, 0.0], [2.5, -1.0, 0.25]]
    seq = shots.ShotSequence.from_dict(data)
    assert seq.scene_points.shape == (2, 3)
    for name in ("points.json", "points.npz"):
        back = shots.load(shots.save(seq, tmp_path / name))
        np.testing.assert_array_equal(back.scene_points, seq.scene_points)
    jsonschema.validate(seq.to_dict(), json.loads(shots.SCHEMA_PATH.read_text()))
    data["scene_points"] = [[0.0, 1.0], [2.5, -1.0]]
    with pytest.raises(shots.ShotSequenceError, match=r"^scene_points: expected shape \(M, 3\)"):
        shots.ShotSequence.from_dict(data)
    data["scene_points"] = [[0.0, 1.0, float("nan")]]
    with pytest.raises(shots.ShotSequenceError, match=r"^scene_points\[0\]\[2\]"):
        shots.ShotSequence.from_dict(data)
