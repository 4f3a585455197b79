"""Models, one file per model (diffusers style).

- :mod:`backend.models.planner_model`: the learned planner's network (ShotVerse §3.2): learnable
  query tokens read by a Qwen3-VL with LoRA, projected into an OPT trajectory decoder.
"""
