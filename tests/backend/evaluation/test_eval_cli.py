"""``python -m backend labels`` and ``python -m backend eval planner`` as a user runs them."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PEER_POSES

ROOT = Path(__file__).resolve().parents[3]
PROMPTS = ROOT / "data" / "eval" / "planner_prompts.jsonl"


def backend(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_labels_table() -> None:
    result = backend("labels", PEER_POSES / "videox_fun" / "CW.txt", "--fps", "16")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "CW: frames 0..80 (81 at 16 fps)"
    assert lines[1].split() == ["0..80", "5.06", "s", "static", "roll_cw", "static"]


def test_labels_json() -> None:
    clip = sorted((PEER_POSES / "cameractrl").glob("*.txt"))[0]
    result = backend("labels", clip, "--fps", "3.75", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fps"] == 3.75
    (segments,) = data["shots"].values()
    assert segments[0]["start"] == 0 and segments[-1]["end"] == 15
    assert all(set(s) == {"start", "end", "seconds", "translation", "rotation", "zoom"}
               for s in segments)


def test_labels_bad_files(tmp_path: Path) -> None:
    _assert_user_error(backend("labels", tmp_path / "missing.txt", "--fps", "24"),
                       "missing.txt", "no such file")
    _assert_user_error(backend("labels", PEER_POSES / "videox_fun" / "CW.txt"), "--fps")
    broken = tmp_path / "broken.txt"
    broken.write_text("\n1 2 3\n")
    _assert_user_error(backend("labels", broken, "--fps", "24"), "broken.txt:2")


def test_eval_planner_bad_prompt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": "p", "shots": [{"prompt": "q", "expected": {}}]}\n')
    _assert_user_error(backend("eval", "planner", "--prompts", bad),
                       f"{bad}:1: shots[0].expected.translation")


def test_eval_planner_prints_f1(tmp_path: Path) -> None:
    if not hasattr(importlib.import_module("backend.planning"), "get_planner"):
        pytest.skip("backend.planning.get_planner is not there yet")
    small = tmp_path / "small.jsonl"
    lines = PROMPTS.read_text().splitlines()
    small.write_text("\n".join(line for line in lines if '"market_three"' in line
                               or '"chef_creeps_closer"' in line) + "\n")
    result = backend("eval", "planner", "--prompts", small)
    assert result.returncode == 0, result.stderr
    assert "chef_creeps_closer" in result.stdout and "market_three" in result.stdout
    overall = next(line for line in result.stdout.splitlines() if line.startswith("overall"))
    scores = [float(value) for value in overall.split()[-5:]]
    assert all(0.0 <= value <= 1.0 for value in scores)
    data = json.loads(backend("eval", "planner", "--prompts", small, "--json").stdout)
    assert data["entries"] == 2 and data["shots"] == 4
    assert set(data["overall"]) == {"translation", "rotation", "zoom", "mean", "joint", "frames"}
