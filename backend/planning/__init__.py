"""Shot planning: prompts (+ scene context, + image) -> multi-shot camera paths (ShotSequence).

Two planners behind one interface (:mod:`backend.planning.base`): the grammar planner (the
embedded default, no weights) and the learned planner (ShotVerse's VLM + trajectory decoder).
Motion labels (:mod:`backend.planning.motion_labels`) judge what any camera path does.
"""
