"""Weighted F1 of per-frame labels: a hand-worked example and scikit-learn's definition."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.evaluation import MotionF1, motion_f1, weighted_f1
from backend.evaluation.motion_f1 import per_class_f1
from backend.planning.motion_labels import FrameLabels


def sklearn_weighted_f1(y_pred: list[str], y_true: list[str]) -> float:
    """scikit-learn's f1_score(y_true, y_pred, average="weighted", zero_division=0), written out
    from its documented definition: per label of the union, precision = TP / (TP + FP) and
    recall = TP / (TP + FN) (0 when the denominator is 0), F1 = 2PR / (P + R) (0 when P + R = 0),
    averaged with the label's support (its count in y_true) as the weight."""
    labels = sorted(set(y_true) | set(y_pred))
    total, weights = 0.0, 0
    for label in labels:
        tp = sum(p == label and t == label for p, t in zip(y_pred, y_true, strict=True))
        fp = sum(p == label and t != label for p, t in zip(y_pred, y_true, strict=True))
        fn = sum(p != label and t == label for p, t in zip(y_pred, y_true, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        support = tp + fn
        total += f1 * support
        weights += support
    return total / weights


def test_hand_worked_example() -> None:
    expected = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    # a: TP 2, predicted 2, expected 3 -> F1 4/5; b: TP 1, 2, 2 -> 1/2; c: TP 1, 2, 1 -> 2/3.
    scores = per_class_f1(predicted, expected)
    assert {label: support for label, (_, support) in scores.items()} == {"a": 3, "b": 2, "c": 1}
    assert {label: f1 for label, (f1, _) in scores.items()} == pytest.approx(
        {"a": 0.8, "b": 0.5, "c": 2 / 3})
    assert weighted_f1(predicted, expected) == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3) / 6)
    assert weighted_f1(predicted, expected) == pytest.approx(0.677777, abs=1e-6)


def test_extremes() -> None:
    assert weighted_f1(["x"] * 4, ["x"] * 4) == 1.0
    assert weighted_f1(["y"] * 4, ["x"] * 4) == 0.0
    # A class that is only predicted weighs nothing but costs the expected class its recall.
    assert weighted_f1(["x", "x", "y", "y"], ["x"] * 4) == pytest.approx(2 * 2 / (4 + 2))
    with pytest.raises(ValueError, match="labels"):
        weighted_f1(["x"], ["x", "x"])
    with pytest.raises(ValueError, match="at least one"):
        weighted_f1([], [])


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from("abcde")), min_size=1,
                max_size=40))
def test_matches_sklearn_definition(pairs: list[tuple[str, str]]) -> None:
    expected = [e for e, _ in pairs]
    predicted = [p for _, p in pairs]
    assert weighted_f1(predicted, expected) == pytest.approx(
        sklearn_weighted_f1(predicted, expected), abs=1e-12)


def test_motion_f1_per_channel() -> None:
    push = FrameLabels("push_in", "static", "static")
    push_pan = FrameLabels("push_in", "pan_left", "static")
    score = motion_f1([push, push, push_pan, push_pan], [push] * 4)
    assert isinstance(score, MotionF1)
    assert score.translation == 1.0 and score.zoom == 1.0
    assert score.rotation == pytest.approx(2 * 2 / (4 + 2))
    assert score.joint == score.rotation
    assert score.mean == pytest.approx((2 + 2 / 3) / 3)
    assert score.frames == 4
    assert score.as_dict()["mean"] == score.mean
    with pytest.raises(ValueError, match="frames"):
        motion_f1([push], [push, push])
