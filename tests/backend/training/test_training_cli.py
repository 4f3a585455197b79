"""``python -m backend train planner``: the command line trains, checkpoints and refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.cli import main
from backend.planning.base import PlanRequest, ShotPrompt
from backend.planning.learned import LearnedPlanner
from tests.backend.training.synthetic import write_dataset


def test_cli_trains_two_steps_and_writes_a_loadable_planner(tmp_path: Path, capsys) -> None:
    data = write_dataset(tmp_path / "data", count=3)
    out = tmp_path / "out"
    code = main(["train", "planner", "--data", str(data), "--out", str(out), "--tiny",
                 "--steps", "2", "--batch-size", "2", "--frames-per-shot", "4",
                 "--log-every", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "step 2/2" in printed
    checkpoint = out / "checkpoints" / "step_0000002"
    for folder in (out, checkpoint):
        planner = LearnedPlanner.from_pretrained(folder, device="cpu")
        assert planner.tokenizer.frames_per_shot == 4
        result = planner.plan(PlanRequest("x", [ShotPrompt("dolly in"), ShotPrompt("pan")]))
        assert len(result.sequence.shots) == 2
    a = LearnedPlanner.from_pretrained(out, device="cpu").generate_tokens(PlanRequest(
        "x", [ShotPrompt("a")], seed=3))
    b = LearnedPlanner.from_pretrained(checkpoint, device="cpu").generate_tokens(PlanRequest(
        "x", [ShotPrompt("a")], seed=3))
    assert np.array_equal(a, b)


def test_cli_needs_a_vlm_or_tiny(tmp_path: Path, capsys) -> None:
    code = main(["train", "planner", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--vlm" in capsys.readouterr().err


def test_cli_names_a_missing_data_folder(tmp_path: Path, capsys) -> None:
    code = main(["train", "planner", "--data", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o"), "--tiny", "--steps", "1"])
    assert code == 2
    assert "--data" in capsys.readouterr().err


def test_cli_help_lists_train(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "planner" in capsys.readouterr().out
