"""Motion conditions for the video models: 2D trajectories as blurred flow maps (Image Conductor).

See :mod:`backend.conditioning.trajectories`.
"""

from backend.conditioning.trajectories import (
    Track,
    blur_flow,
    blur_parameters,
    flow_maps,
    gaussian_kernel,
    project_points,
    resample_track,
    resample_tracks,
    sample_tracks,
    scene_point_tracks,
    subject_tracks,
    trajectory_condition,
)

__all__ = [
    "Track",
    "blur_flow",
    "blur_parameters",
    "flow_maps",
    "gaussian_kernel",
    "project_points",
    "resample_track",
    "resample_tracks",
    "sample_tracks",
    "scene_point_tracks",
    "subject_tracks",
    "trajectory_condition",
]
