"""Models, one file per model (diffusers style).

- :mod:`backend.models.planner_model`: the learned planner's network (ShotVerse §3.2): learnable
  query tokens read by a Qwen3-VL with LoRA, projected into an OPT trajectory decoder.
"""

# backend.models.camera_dit: the controller's video transformer (ShotVerse §3.3), Wan plus
# per-block camera projections, 4D RoPE (backend.models.rope4d), per-shot window cross-attention
# and the VideoX-Fun style Plücker adapter (backend.models.plucker_adapter). Not imported here:
# importing the package must stay cheap.
