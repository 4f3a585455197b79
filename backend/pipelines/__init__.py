"""Diffusers-style pipelines (one module per model): ``trajectory_controlnet`` (Image Conductor
on AnimateDiff), ``camera_dit`` (multi-shot camera-controlled Wan 2.1/2.2, ShotVerse's controller).

Modules are imported by name; this package imports nothing, so that torch loads only on use.
"""
