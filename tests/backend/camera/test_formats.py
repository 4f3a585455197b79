"""Camera-path file formats: RealEstate10K/CameraCtrl ``.txt``, nerfstudio camera paths and
``transforms.json``, checked against the peers' own published pose files."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from backend import shots
from backend.camera import se3
from backend.camera.formats import (
    FormatError,
    detect_format,
    nerfstudio,
    read_sequence,
    realestate10k,
    transforms,
    write_sequence,
)
from backend.shots import Shot, ShotSequence
from tests.conftest import PEER_POSES

ROOT = Path(__file__).resolve().parents[3]
PEERS = PEER_POSES
PEER_FILES = sorted(PEERS.glob("*/*.txt"))
VIDEOX = PEERS / "videox_fun"
GOLDEN = ROOT / "tests" / "golden"

SETTINGS = settings(deadline=None, max_examples=30)


def _peer_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_peer_fixtures_are_there() -> None:
    assert len(list((PEERS / "cameractrl").glob("*.txt"))) == 10
    assert len(list(VIDEOX.glob("*.txt"))) == 12


# --------------------------------------------------------------------------------------------
# RealEstate10K / CameraCtrl files


def _assert_re10k_equal(a: realestate10k.RealEstate10KFile,
                        b: realestate10k.RealEstate10KFile) -> None:
    assert a.url == b.url
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert b.timestamps.dtype == np.int64
    np.testing.assert_allclose(b.intrinsics, a.intrinsics, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.distortion, a.distortion, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.w2c, a.w2c, rtol=0, atol=1e-9)


def _raw_rows(path: Path) -> tuple[str, np.ndarray]:
    """The file parsed independently of the code under test: first line, (N, 19) numbers."""
    lines = path.read_text().splitlines()
    rows = [[float(v) for v in line.split()] for line in lines[1:] if line.strip()]
    return lines[0], np.array(rows)


@pytest.mark.parametrize("path", PEER_FILES, ids=_peer_id)
def test_peer_file_parses_and_round_trips(path: Path, tmp_path: Path) -> None:
    data = realestate10k.read(path)
    first_line, rows = _raw_rows(path)
    n = len(rows)
    assert rows.shape[1] == 19
    assert data.url == first_line.strip()
    if path.parent.name == "cameractrl":
        assert data.url.startswith("https://www.youtube.com/")
    else:
        assert data.url == ""
        assert np.all(data.timestamps == 0)
    assert data.timestamps.shape == (n,) and data.intrinsics.shape == (n, 4)
    assert data.w2c.shape == (n, 3, 4) and data.distortion.shape == (n, 2)
    np.testing.assert_array_equal(data.timestamps, rows[:, 0].astype(np.int64))
    np.testing.assert_array_equal(data.intrinsics, rows[:, 1:5])
    np.testing.assert_array_equal(data.distortion, 0.0)
    np.testing.assert_array_equal(data.w2c, rows[:, 7:].reshape(n, 3, 4))
    # Published rotations are orthonormal to the file's precision.
    rotations = data.w2c[:, :, :3]
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, 1, 2),
                               np.broadcast_to(np.eye(3), rotations.shape), atol=1e-6)

    written = realestate10k.write(data, tmp_path / "out" / path.name)
    out_first, out_rows = _raw_rows(written)
    assert out_first == data.url
    np.testing.assert_allclose(out_rows, rows, rtol=0, atol=1e-9)
    _assert_re10k_equal(data, realestate10k.read(written))


@pytest.mark.parametrize("path", PEER_FILES, ids=_peer_id)
def test_peer_file_through_a_shot_sequence(path: Path, tmp_path: Path) -> None:
    """RealEstate10K -> ShotSequence (saved as JSON) -> RealEstate10K keeps poses, normalised
    intrinsics, URL and timestamps; the metadata carries what a ShotSequence has no field for."""
    original = realestate10k.read(path)
    width, height = 832, 480
    seq = read_sequence(path, width=width, height=height, fps=30.0)
    (shot,) = seq.shots
    assert shot.name == path.stem and shot.frame_start == 0
    assert shot.num_frames == len(original.timestamps)
    assert tuple(seq.resolution) == (width, height) and seq.fps == 30.0
    np.testing.assert_allclose(shot.K, original.intrinsics * [width, height, width, height])
    np.testing.assert_allclose(shot.c2w[:, :3] @ np.concatenate(
        [original.w2c, np.tile([[[0, 0, 0, 1.0]]], (len(shot.c2w), 1, 1))], axis=1),
        np.broadcast_to(np.eye(4)[:3], (len(shot.c2w), 3, 4)), atol=1e-9)

    saved = shots.load(shots.save(seq, tmp_path / "seq.json"))
    assert saved.metadata["realestate10k"][shot.name]["url"] == original.url
    written = write_sequence(saved, tmp_path / "out", "realestate10k")
    assert written == [(shot.name, tmp_path / "out" / f"{shot.name}.txt")]
    _assert_re10k_equal(original, realestate10k.read(written[0][1]))


def test_default_timestamps_follow_fps(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    written = dict(write_sequence(seq, tmp_path, "realestate10k"))
    data = realestate10k.read(written["shot_020"])
    assert data.url == ""
    np.testing.assert_array_equal(data.timestamps, [0, 41667, 83333])
    np.testing.assert_allclose(data.intrinsics, [[500 / 640, 500 / 360, 0.5, 0.5]] * 3)
    np.testing.assert_allclose(data.w2c, np.linalg.inv(seq.shot("shot_020").c2w)[:, :3],
                               atol=1e-12)
    assert written["shot_020"].read_text().splitlines()[0] == ""


def test_malformed_re10k_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("url\n0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n0 0.5 0.9 0.5\n")
    with pytest.raises(realestate10k.RealEstate10KError, match=r"bad\.txt:3: expected 19"):
        realestate10k.read(path)
    path.write_text("url\n")
    with pytest.raises(realestate10k.RealEstate10KError, match="no frame lines"):
        realestate10k.read(path)
    path.write_text("url\n0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 nan\n")
    with pytest.raises(realestate10k.RealEstate10KError, match="finite"):
        realestate10k.read(path)


# --------------------------------------------------------------------------------------------
# Signs of the VideoX-Fun presets (OpenCV: +x right, +y down, +z forward)


def _relative_centres(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres and rotations in the FIRST camera's axes, per frame."""
    shot = realestate10k.to_shot(realestate10k.read(VIDEOX / name), 672, 384, name="s")
    rel = se3.relative_to_first(shot.c2w)
    return rel[:, :3, 3], rel[:, :3, :3]


@pytest.mark.parametrize("name,direction", [
    ("Pan_Left.txt", (-1, 0, 0)),       # a truck left
    ("Pan_Right.txt", (1, 0, 0)),
    ("Pan_Up.txt", (0, -1, 0)),         # OpenCV y is down: up is -y
    ("Pan_Down.txt", (0, 1, 0)),
    ("Zoom_In.txt", (0, 0, 1)),         # a dolly in: forward is +z
    ("Zoom_Out.txt", (0, 0, -1)),
    ("Pan_Left_Up.txt", (-1, -1, 0)),
    ("Pan_Left_Down.txt", (-1, 1, 0)),
    ("Pan_Right_Up.txt", (1, -1, 0)),
    ("Pan_Right_Down.txt", (1, 1, 0)),
])
def test_videox_fun_translation_presets(name: str, direction: tuple[int, int, int]) -> None:
    centres, rotations = _relative_centres(name)
    np.testing.assert_allclose(rotations, np.broadcast_to(np.eye(3), rotations.shape), atol=1e-9)
    np.testing.assert_allclose(centres[0], 0.0, atol=1e-12)
    unit = np.array(direction, dtype=float) / np.linalg.norm(direction)
    along = centres @ unit
    assert along[-1] > 0.5
    # The centre moves monotonically along that direction and nowhere else.
    assert np.all(np.diff(along) >= -1e-12)
    np.testing.assert_allclose(centres, along[:, None] * unit, atol=1e-9)


@pytest.mark.parametrize("name,sense", [("CW.txt", 1.0), ("ACW.txt", -1.0)])
def test_videox_fun_roll_presets(name: str, sense: float) -> None:
    centres, rotations = _relative_centres(name)
    np.testing.assert_allclose(centres, 0.0, atol=1e-12)
    rotvecs = Rotation.from_matrix(rotations).as_rotvec()
    # A roll: rotation about the optical axis (z) only.
    np.testing.assert_allclose(rotvecs[:, :2], 0.0, atol=1e-9)
    assert abs(rotvecs[-1, 2]) > 0.5
    # CW: the camera's right (+x) turns toward its down (+y), clockwise as seen from behind it.
    assert np.sign(rotvecs[-1, 2]) == sense
    assert np.all(np.sign(rotations[1:, 1, 0]) == sense)


# --------------------------------------------------------------------------------------------
# nerfstudio and transforms.json


@st.composite
def single_shot_sequences(draw: st.DrawFn, square_centred: bool) -> ShotSequence:
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    width = draw(st.integers(16, 2048))
    height = draw(st.integers(16, 2048))
    rotations = Rotation.random(n, random_state=seed).as_matrix()
    c2w = se3.make_pose(rotations, rng.uniform(-20, 20, (n, 3)))
    if draw(st.booleans()):
        focal = np.full(n, draw(st.floats(5.0, 5000.0)))
    else:
        focal = rng.uniform(5.0, 5000.0, n)
    if square_centred:
        K = np.column_stack([focal, focal, np.full(n, width / 2), np.full(n, height / 2)])
    else:
        K = np.column_stack([focal, focal * rng.uniform(0.5, 2.0, n),
                             rng.uniform(0, width, n), rng.uniform(0, height, n)])
    fps = draw(st.sampled_from([12.0, 23.976, 24.0, 30.0]))
    shot = Shot(name="take_1", camera="take_1", frame_start=0, frame_end=n - 1, c2w=c2w, K=K)
    return ShotSequence(fps=fps, resolution=(width, height), shots=[shot]).validate()


def _assert_same_camera(a: ShotSequence, b: ShotSequence) -> None:
    assert tuple(b.resolution) == tuple(a.resolution)
    assert b.fps == a.fps
    (sa,), (sb,) = a.shots, b.shots
    assert sb.name == sa.name and sb.num_frames == sa.num_frames
    np.testing.assert_allclose(sb.c2w, sa.c2w, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sb.K, sa.K, rtol=0, atol=1e-9)


@SETTINGS
@given(single_shot_sequences(square_centred=True))
def test_nerfstudio_round_trip(seq: ShotSequence) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (_, path), = write_sequence(seq, Path(folder) / "paths", "nerfstudio")
        assert path == Path(folder) / "paths" / "take_1.json"
        assert detect_format(path) == "nerfstudio"
        _assert_same_camera(seq, read_sequence(path))


@SETTINGS
@given(single_shot_sequences(square_centred=False))
def test_transforms_round_trip(seq: ShotSequence) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (_, path), = write_sequence(seq, Path(folder), "transforms")
        assert path == Path(folder) / "take_1" / "transforms.json"
        assert detect_format(path) == "transforms"
        back = read_sequence(path)
        _assert_same_camera(seq, back)
        # Exact, in fact: the axis flip is a sign change and JSON keeps every float.
        np.testing.assert_array_equal(back.shots[0].c2w, seq.shots[0].c2w)
        np.testing.assert_array_equal(back.shots[0].K, seq.shots[0].K)


def test_nerfstudio_layout_and_known_fov(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    written = dict(write_sequence(seq, tmp_path, "nerfstudio"))
    data = json.loads(written["shot_010"].read_text())
    assert data["camera_type"] == "perspective"
    assert (data["render_width"], data["render_height"], data["fps"]) == (640, 360, 24.0)
    assert len(data["camera_path"]) == 5
    frame = data["camera_path"][0]
    # Vertical fov: fy = 500 at H = 360 -> 2 atan(180 / 500).
    assert frame["fov"] == pytest.approx(math.degrees(2 * math.atan(180 / 500)))
    # OpenGL axes: the camera looks down its -z; here world +Y, so column 2 is world -Y.
    c2w_gl = np.array(frame["camera_to_world"]).reshape(4, 4)
    np.testing.assert_allclose(c2w_gl[:3, 2], [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(c2w_gl[:3, 1], [0.0, 0.0, 1.0], atol=1e-12)  # up is world +Z
    np.testing.assert_allclose(c2w_gl[:3, 3], [0.0, -5.0, 1.5])


def _transforms_file(path: Path, **top) -> Path:
    data = {"frames": [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}], **top}
    path.write_text(json.dumps(data))
    return path


def test_opengl_identity_looks_down_world_minus_z(tmp_path: Path) -> None:
    path = _transforms_file(tmp_path / "transforms.json", w=64, h=48, fl_x=50.0, fl_y=50.0)
    shot, resolution, fps = transforms.read(path, name="t")
    assert resolution == (64, 48) and math.isnan(fps)
    np.testing.assert_array_equal(shot.c2w[0][:3, 2], [0.0, 0.0, -1.0])  # OpenCV forward
    np.testing.assert_array_equal(shot.c2w[0][:3, 1], [0.0, -1.0, 0.0])  # OpenCV down
    np.testing.assert_array_equal(shot.c2w[0][:3, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(shot.K[0], [50.0, 50.0, 32.0, 24.0])

    camera_path = tmp_path / "camera_path.json"
    camera_path.write_text(json.dumps({
        "render_width": 64, "render_height": 48, "fps": 10,
        "camera_path": [{"camera_to_world": np.eye(4).ravel().tolist(), "fov": 90.0}]}))
    shot, _, fps = nerfstudio.read(camera_path, name="n")
    assert fps == 10.0
    np.testing.assert_array_equal(shot.c2w[0][:3, 2], [0.0, 0.0, -1.0])
    np.testing.assert_allclose(shot.K[0], [24.0, 24.0, 32.0, 24.0])  # (H/2) / tan(45 deg)


def test_transforms_camera_angle_x_needs_the_resolution(tmp_path: Path) -> None:
    angle = 2 * math.atan(0.5 * 800 / 1111.0)
    path = _transforms_file(tmp_path / "transforms.json", camera_angle_x=angle)
    with pytest.raises(transforms.TransformsError, match=r"w/h.*--width") as info:
        transforms.read(path, name="t")
    assert str(path) in str(info.value)
    with pytest.raises(FormatError, match="--fps"):
        read_sequence(path, width=800, height=800)
    seq = read_sequence(path, width=800, height=800, fps=24.0)
    assert tuple(seq.resolution) == (800, 800)
    assert seq.shots[0].name == tmp_path.name
    np.testing.assert_allclose(seq.shots[0].K[0], [1111.0, 1111.0, 400.0, 400.0])
    # A resolution in the file wins over the caller's.
    path = _transforms_file(tmp_path / "transforms.json", camera_angle_x=angle, w=400, h=300)
    seq = read_sequence(path, width=800, height=800, fps=24.0)
    assert tuple(seq.resolution) == (400, 300)
    np.testing.assert_allclose(seq.shots[0].K[0, :2], 555.5)
    # camera_angle_y gives fy from the height.
    path = _transforms_file(tmp_path / "transforms.json", camera_angle_x=angle, w=400, h=300,
                            camera_angle_y=2 * math.atan(150 / 600.0))
    shot, _, _ = transforms.read(path, name="t")
    np.testing.assert_allclose(shot.K[0], [555.5, 600.0, 200.0, 150.0])


@pytest.mark.parametrize("top,frame,field", [
    ({"k1": 0.01}, {}, ": k1: lens distortion"),
    ({}, {"p2": -0.001}, ": frames[0].p2: lens distortion"),
    ({"k4": 0.2}, {}, ": k4: "),
    ({"camera_model": "OPENCV_FISHEYE"}, {}, "camera_model"),
    ({"camera_model": "EQUIRECTANGULAR"}, {}, "camera_model"),
])
def test_transforms_refuses_distortion_and_other_models(tmp_path: Path, top: dict, frame: dict,
                                                        field: str) -> None:
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps({
        "w": 64, "h": 48, "fl_x": 50.0, "fl_y": 50.0, **top,
        "frames": [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist(), **frame}]}))
    with pytest.raises(transforms.TransformsError) as info:
        transforms.read(path, name="t")
    assert field in str(info.value) and str(path) in str(info.value)


def test_transforms_zero_distortion_is_pinhole(tmp_path: Path) -> None:
    path = _transforms_file(tmp_path / "transforms.json", w=64, h=48, fl_x=50.0, k1=0.0, p1=0.0,
                            camera_model="OPENCV")
    shot, _, _ = transforms.read(path, name="t")
    np.testing.assert_array_equal(shot.K[0], [50.0, 50.0, 32.0, 24.0])


def test_transforms_other_errors(tmp_path: Path) -> None:
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps({"w": 64, "h": 48, "frames": [{"transform_matrix": []}]}))
    with pytest.raises(transforms.TransformsError, match="intrinsics"):
        transforms.read(path, name="t")
    path.write_text(json.dumps({"w": 64, "h": 48, "fl_x": 50, "frames": [
        {"transform_matrix": np.eye(4)[:3].tolist()}]}))
    with pytest.raises(transforms.TransformsError, match=r"frames\[0\]\.transform_matrix"):
        transforms.read(path, name="t")
    path.write_text(json.dumps({"w": 64, "h": 48, "camera_angle_x": 1.0, "camera_angle_y": "wide",
                                "frames": [{"transform_matrix": np.eye(4).tolist()}]}))
    with pytest.raises(transforms.TransformsError, match="camera_angle_y"):
        transforms.read(path, name="t")
    path.write_text(json.dumps({"w": 64, "h": 48, "fl_x": 50, "frames": []}))
    with pytest.raises(transforms.TransformsError, match="frames"):
        transforms.read(path, name="t")


def test_nerfstudio_refuses_what_it_cannot_express(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    seq.shots[1].K[1, 1] = 510.0
    with pytest.raises(nerfstudio.NerfstudioError, match=r"'shot_020'.*fx != fy"):
        write_sequence(seq, tmp_path, "nerfstudio")
    seq = shots.load(GOLDEN / "two_shots.json")
    seq.shots[0].K[3, 2] = 330.0  # lens shift
    with pytest.raises(nerfstudio.NerfstudioError, match=r"'shot_010'.*principal point"):
        write_sequence(seq, tmp_path, "nerfstudio")
    seq = shots.load(GOLDEN / "two_shots.json")
    seq.shots[0].K[0, 3] = 170.0
    with pytest.raises(nerfstudio.NerfstudioError, match="principal point"):
        write_sequence(seq, tmp_path, "nerfstudio")


def test_nerfstudio_read_errors(tmp_path: Path) -> None:
    path = tmp_path / "camera_path.json"
    frame = {"camera_to_world": np.eye(4).ravel().tolist(), "fov": 50.0}
    cases = [
        ({"render_width": 64, "render_height": 48, "camera_type": "fisheye",
          "camera_path": [frame]}, "camera_type"),
        ({"render_width": 64, "camera_path": [frame]}, "render_height"),
        ({"render_width": 64, "render_height": 48, "camera_path": [{"fov": 50.0}]},
         r"camera_path\[0\]"),
        ({"render_width": 64, "render_height": 48,
          "camera_path": [{**frame, "camera_to_world": [1, 0, 0]}]}, "16 numbers"),
        ({"render_width": 64, "render_height": 48, "camera_path": [{**frame, "fov": 180.0}]},
         "fov"),
        ({"render_width": 64, "render_height": 48, "camera_path": []}, "camera_path"),
    ]
    for data, field in cases:
        path.write_text(json.dumps(data))
        with pytest.raises(nerfstudio.NerfstudioError, match=field):
            nerfstudio.read(path, name="n")
    path.write_text(json.dumps({"render_width": 64, "render_height": 48,
                                "camera_path": [frame]}))
    with pytest.raises(FormatError, match=r"camera_path\.json.*--fps"):
        read_sequence(path)
    assert read_sequence(path, fps=8.0).fps == 8.0


# --------------------------------------------------------------------------------------------
# Detection, multi-shot output


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(VIDEOX / "Pan_Left.txt") == "realestate10k"
    assert detect_format(GOLDEN / "two_shots.json") == "shots"
    seq = shots.load(GOLDEN / "minimal.json")
    assert detect_format(shots.save(seq, tmp_path / "seq.npz")) == "npz"
    (_, ns), = write_sequence(seq, tmp_path / "ns", "nerfstudio")
    assert detect_format(ns) == "nerfstudio"
    (_, tf), = write_sequence(seq, tmp_path / "tf", "transforms")
    assert detect_format(tf) == "transforms"

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(FormatError, match="neither"):
        detect_format(other)
    other.write_text("{not json")
    with pytest.raises(FormatError, match=r"other\.json: not valid JSON"):
        detect_format(other)
    unknown = tmp_path / "poses.csv"
    unknown.write_text("1,2,3\n")
    with pytest.raises(FormatError, match=r"poses\.csv.*unknown extension '\.csv'"):
        detect_format(unknown)
    with pytest.raises(FormatError, match="no such file"):
        detect_format(tmp_path / "missing.txt")


def test_two_shots_write_one_file_per_shot(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    expected = {
        "realestate10k": [tmp_path / "re" / "shot_010.txt", tmp_path / "re" / "shot_020.txt"],
        "nerfstudio": [tmp_path / "ns" / "shot_010.json", tmp_path / "ns" / "shot_020.json"],
        "transforms": [tmp_path / "tf" / "shot_010" / "transforms.json",
                       tmp_path / "tf" / "shot_020" / "transforms.json"],
    }
    folders = {"realestate10k": "re", "nerfstudio": "ns", "transforms": "tf"}
    for fmt, paths in expected.items():
        written = write_sequence(seq, tmp_path / folders[fmt], fmt)
        assert written == list(zip(["shot_010", "shot_020"], paths, strict=True))
        for (name, path), shot in zip(written, seq.shots, strict=True):
            kwargs = {"width": 640, "height": 360, "fps": 24.0} if fmt == "realestate10k" else {}
            back = read_sequence(path, **kwargs)
            assert back.shots[0].name == name == shot.name
            np.testing.assert_allclose(back.shots[0].c2w, shot.c2w, atol=1e-9)
            np.testing.assert_allclose(back.shots[0].K, shot.K, atol=1e-9)
            assert back.fps == 24.0 and tuple(back.resolution) == (640, 360)


@pytest.mark.parametrize("fmt,name", [("realestate10k", "one.txt"), ("nerfstudio", "one.json"),
                                      ("transforms", "transforms.json")])
def test_two_shots_into_one_file_is_refused(tmp_path: Path, fmt: str, name: str) -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    with pytest.raises(FormatError, match=r"2 shots") as info:
        write_sequence(seq, tmp_path / name, fmt)
    assert name in str(info.value)
    assert not (tmp_path / name).exists()


def test_single_shot_into_one_file(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "minimal.json")
    assert write_sequence(seq, tmp_path / "only.txt", "realestate10k") == [
        ("only", tmp_path / "only.txt")]
    assert realestate10k.read(tmp_path / "only.txt").w2c.shape == (2, 3, 4)


def test_unknown_output_format(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "minimal.json")
    with pytest.raises(FormatError, match="unknown format 'colmap'"):
        write_sequence(seq, tmp_path / "x", "colmap")


def test_shots_and_npz_outputs(tmp_path: Path) -> None:
    seq = shots.load(GOLDEN / "two_shots.json")
    written = write_sequence(seq, tmp_path / "seq", "npz")
    assert [name for name, _ in written] == ["shot_010", "shot_020"]
    assert written[0][1] == tmp_path / "seq.npz"
    back = read_sequence(tmp_path / "seq.npz")
    np.testing.assert_array_equal(back.shots[1].c2w, seq.shots[1].c2w)
    written = write_sequence(seq, tmp_path / "copy.json", "shots")
    assert read_sequence(written[0][1]).to_dict() == seq.to_dict()


def test_re10k_needs_resolution_and_fps(tmp_path: Path) -> None:
    path = VIDEOX / "Zoom_In.txt"
    with pytest.raises(FormatError, match=r"Zoom_In\.txt.*--width"):
        read_sequence(path, fps=24.0)
    with pytest.raises(FormatError, match=r"Zoom_In\.txt.*--height"):
        read_sequence(path, width=672, fps=24.0)
    with pytest.raises(FormatError, match=r"Zoom_In\.txt.*--fps"):
        read_sequence(path, width=672, height=384)
