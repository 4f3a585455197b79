"""Evaluation: metrics of planned and generated camera paths.

- :mod:`backend.evaluation.motion_f1`: support-weighted F1 of per-frame motion labels (ShotVerse
  Track A, GenDoP), per channel (translation, rotation, zoom).
- :mod:`backend.evaluation.planner_eval`: plan every entry of a prompt file, label the plans and
  score them against the expected labels (``python -m backend eval planner``).

Only the light metric module is imported here; the planner evaluation is imported where used.
"""

from backend.evaluation.motion_f1 import MotionF1, motion_f1, weighted_f1

__all__ = ["MotionF1", "motion_f1", "weighted_f1"]
