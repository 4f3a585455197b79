"""Support-weighted F1 of per-frame motion labels (ShotVerse Track A, GenDoP's CaptionMetrics).

GenDoP labels the predicted and the reference trajectory frame by frame and scores the predicted
labels with a multiclass F1, ``average="weighted"``: the F1 of each class, averaged with the
class's support (its number of frames in the reference) as the weight, a class with no
prediction scoring 0. That is scikit-learn's ``f1_score(average="weighted")``; here it is plain
numpy. Classes that appear only in the prediction have no support and weigh nothing, but their
frames are missing from the recall of the classes they should have been.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

CHANNELS = ("translation", "rotation", "zoom")


class _Labelled(Protocol):
    translation: str
    rotation: str
    zoom: str


def per_class_f1(predicted: Sequence[str], expected: Sequence[str]) -> dict[str, tuple[float, int]]:
    """``{class: (F1, support)}`` for every class of ``expected``.

    F1 = 2·TP / (predicted count + expected count), which equals 2PR / (P + R) and is 0 when the
    class is never predicted (scikit-learn's ``zero_division=0``).
    """
    predicted = np.asarray(list(predicted), dtype=object)
    expected = np.asarray(list(expected), dtype=object)
    if predicted.shape != expected.shape:
        raise ValueError(f"predicted has {predicted.size} labels, expected {expected.size}")
    scores = {}
    for label in dict.fromkeys(expected.tolist()):
        is_expected = expected == label
        is_predicted = predicted == label
        true_positives = np.count_nonzero(is_expected & is_predicted)
        support = int(np.count_nonzero(is_expected))
        scores[label] = (2.0 * true_positives / (support + np.count_nonzero(is_predicted)), support)
    return scores


def weighted_f1(predicted: Sequence[str], expected: Sequence[str]) -> float:
    """Support-weighted mean of the per-class F1 over the expected classes.

    predicted, expected: one label per frame, same length (> 0).
    """
    scores = per_class_f1(predicted, expected)
    total = sum(support for _, support in scores.values())
    if total == 0:
        raise ValueError("weighted_f1 needs at least one expected label")
    return float(sum(f1 * support for f1, support in scores.values()) / total)


@dataclass(frozen=True)
class MotionF1:
    """Weighted F1 of each label channel over the same frames."""

    translation: float
    """F1 of the 27-class translation labels."""
    rotation: float
    """F1 of the 7-class rotation labels."""
    zoom: float
    """F1 of the 3-class zoom labels."""
    joint: float
    """F1 of the joint (translation, rotation, zoom) label, GenDoP's combined class."""
    frames: int
    """Number of frames scored."""

    @property
    def mean(self) -> float:
        """Mean of the translation, rotation and zoom F1."""
        return (self.translation + self.rotation + self.zoom) / 3.0

    def as_dict(self) -> dict[str, float | int]:
        return {"translation": self.translation, "rotation": self.rotation, "zoom": self.zoom,
                "mean": self.mean, "joint": self.joint, "frames": self.frames}


def motion_f1(predicted: Sequence[_Labelled], expected: Sequence[_Labelled]) -> MotionF1:
    """Per-channel weighted F1 of per-frame labels (``FrameLabels`` or alike), same length."""
    if len(predicted) != len(expected):
        raise ValueError(f"predicted has {len(predicted)} frames, expected {len(expected)}")
    scores = {name: weighted_f1([getattr(p, name) for p in predicted],
                                [getattr(e, name) for e in expected]) for name in CHANNELS}

    def joint(labels: Sequence[_Labelled]) -> list[str]:
        return ["|".join(getattr(label, name) for name in CHANNELS) for label in labels]

    return MotionF1(scores["translation"], scores["rotation"], scores["zoom"],
                    weighted_f1(joint(predicted), joint(expected)), len(expected))
