"""``python -m backend convert`` as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend import shots
from backend.camera.formats import realestate10k
from tests.conftest import PEER_POSES

ROOT = Path(__file__).resolve().parents[2]
PEERS = PEER_POSES
GOLDEN = ROOT / "tests" / "golden"
PAN_LEFT = PEERS / "videox_fun" / "Pan_Left.txt"
CAMERACTRL = sorted((PEERS / "cameractrl").glob("*.txt"))[0]


def convert(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend", "convert", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def _assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def test_re10k_to_shots_json(tmp_path: Path) -> None:
    out = tmp_path / "seq.json"
    result = convert(CAMERACTRL, out, "--width", "1024", "--height", "576", "--fps", "30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    name = CAMERACTRL.stem
    original = realestate10k.read(CAMERACTRL)
    n = len(original.timestamps)
    assert lines[0].startswith(f"{name}: frames 0..{n - 1} ({n}) -> ")
    assert str(out) in lines[0] and lines[0].endswith("[shots]")

    seq = shots.load(out)
    assert seq.fps == 30.0 and tuple(seq.resolution) == (1024, 576)
    (shot,) = seq.shots
    assert shot.name == name and shot.num_frames == n
    np.testing.assert_allclose(shot.K, original.intrinsics * [1024, 576, 1024, 576])
    meta = seq.metadata["realestate10k"][name]
    assert meta["url"] == original.url and meta["timestamps"] == original.timestamps.tolist()

    # And back: the same pose file, URL and timestamps included.
    folder = tmp_path / "back"
    result = convert(out, folder, "--to", "realestate10k")
    assert result.returncode == 0, result.stderr
    back = realestate10k.read(folder / f"{name}.txt")
    assert back.url == original.url
    np.testing.assert_array_equal(back.timestamps, original.timestamps)
    np.testing.assert_allclose(back.w2c, original.w2c, atol=1e-9)
    np.testing.assert_allclose(back.intrinsics, original.intrinsics, atol=1e-9)


def test_re10k_to_npz(tmp_path: Path) -> None:
    out = tmp_path / "pan.npz"
    result = convert(PAN_LEFT, out, "--width", "672", "--height", "384", "--fps", "16")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[npz]")
    assert shots.load(out).shots[0].num_frames == 81


@pytest.mark.parametrize("args,flag", [
    (("--width", "672", "--height", "384"), "--fps"),
    (("--height", "384", "--fps", "16"), "--width"),
    (("--width", "672", "--fps", "16"), "--height"),
])
def test_missing_flags_name_file_and_flag(tmp_path: Path, args: tuple[str, ...],
                                          flag: str) -> None:
    out = tmp_path / "seq.json"
    result = convert(PAN_LEFT, out, *args)
    _assert_user_error(result, str(PAN_LEFT), flag)
    assert not out.exists()


def test_shots_to_re10k_folder(tmp_path: Path) -> None:
    folder = tmp_path / "poses"
    result = convert(GOLDEN / "two_shots.json", folder, "--to", "realestate10k")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"shot_010: frames 1..5 (5) -> {folder / 'shot_010.txt'} [realestate10k]",
        f"shot_020: frames 6..8 (3) -> {folder / 'shot_020.txt'} [realestate10k]",
    ]
    seq = shots.load(GOLDEN / "two_shots.json")
    for shot in seq.shots:
        data = realestate10k.read(folder / f"{shot.name}.txt")
        np.testing.assert_allclose(data.w2c, np.linalg.inv(shot.c2w)[:, :3], atol=1e-12)


def test_shots_to_single_re10k_file_refused(tmp_path: Path) -> None:
    result = convert(GOLDEN / "two_shots.json", tmp_path / "one.txt")
    _assert_user_error(result, "one.txt", "2 shots")


def test_shots_to_nerfstudio_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ns"
    result = convert(GOLDEN / "two_shots.json", folder, "--to", "nerfstudio")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith("[nerfstudio]") for line in lines)
    for name, frames in (("shot_010", 5), ("shot_020", 3)):
        data = json.loads((folder / f"{name}.json").read_text())
        assert len(data["camera_path"]) == frames
        assert (data["render_width"], data["render_height"]) == (640, 360)
    # nerfstudio -> ShotSequence needs nothing more: the file carries resolution and fps.
    result = convert(folder / "shot_020.json", tmp_path / "back.json")
    assert result.returncode == 0, result.stderr
    back = shots.load(tmp_path / "back.json")
    original = shots.load(GOLDEN / "two_shots.json").shot("shot_020")
    np.testing.assert_allclose(back.shots[0].c2w, original.c2w, atol=1e-9)
    np.testing.assert_allclose(back.shots[0].K, original.K, atol=1e-9)


def test_invalid_shot_sequence_names_the_field(tmp_path: Path) -> None:
    data = json.loads((GOLDEN / "two_shots.json").read_text())
    data["shots"][1]["K"][0][0] = -500.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = convert(bad, tmp_path / "out", "--to", "realestate10k")
    _assert_user_error(result, str(bad), "shots[1] 'shot_020'.K[0]", "fx")
    assert not (tmp_path / "out").exists()


def test_bad_json_and_unknown_output(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{")
    _assert_user_error(convert(bad, tmp_path / "x.json"), "broken.json", "not valid JSON")
    _assert_user_error(convert(GOLDEN / "minimal.json", tmp_path / "out.mp4"), "out.mp4", "--to")
    _assert_user_error(convert(tmp_path / "missing.txt", tmp_path / "x.json"), "missing.txt")


def test_argparse_errors_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "backend", "convert"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = convert(GOLDEN / "minimal.json", "x", "--to", "colmap")
    assert result.returncode == 2 and "invalid choice" in result.stderr
