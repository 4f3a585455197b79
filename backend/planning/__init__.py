"""Shot planning: prompts (+ scene context, + image) -> multi-shot camera paths (ShotSequence).

Two planners behind one interface (:mod:`backend.planning.base`): the grammar planner (the
embedded default, no weights) and the learned planner (ShotVerse's VLM + trajectory decoder).
Motion labels (:mod:`backend.planning.motion_labels`) judge what any camera path does.
"""

from __future__ import annotations

from os import PathLike

from backend.planning.base import Planner

PLANNERS = ("grammar", "learned")
"""Names :func:`get_planner` knows."""


def get_planner(name: str, weights: str | PathLike[str] | None = None) -> Planner:
    """The planner called ``name``: ``grammar`` (no weights) or ``learned`` (``weights``: a
    directory written by the planner's training, the CLI's ``--weights``)."""
    if name == "grammar":
        if weights is not None:
            raise ValueError("the grammar planner takes no weights; drop --weights or use "
                             "--planner learned")
        from backend.planning.grammar import GrammarPlanner

        return GrammarPlanner()
    if name == "learned":
        if weights is None:
            raise ValueError("the learned planner needs --weights: the directory of a trained "
                             "planner (see `python -m backend train planner`)")
        from backend.planning.learned import LearnedPlanner

        return LearnedPlanner.from_pretrained(weights)
    raise ValueError(f"unknown planner {name!r}; choose one of {', '.join(PLANNERS)}")
