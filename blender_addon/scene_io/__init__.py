"""The add-on's only reader and writer of shots in ``bpy``: Blender scene <-> ShotSequence data.

- :mod:`.export`: shots (markers bound to cameras), cameras and subjects -> ShotSequence data.
- :mod:`.sampling`: per-frame camera and subject matrices, fcurves evaluated without frame steps.
- :mod:`.plan_import`: ShotSequence data -> plan cameras with Bezier keys and bound markers.
All camera math lives in the bpy-free :mod:`..camera_model`; the data layout is the ShotSequence
contract (version 1, ``backend/schema/shot_sequence.v1.schema.json``).
"""

from .export import (
    FORMAT,
    VERSION,
    SceneError,
    ShotSpec,
    camera_settings,
    export_sequence,
    read_shots,
    read_subjects,
)
from .plan_import import PLAN_COLLECTION, ImportReport, edited_plan_cameras, import_sequence
from .sampling import fcurve_path_reason, sample_timeline
from .subjects import SUBJECTS_COLLECTION, add_subjects, subjects_collection

__all__ = [
    "FORMAT",
    "PLAN_COLLECTION",
    "SUBJECTS_COLLECTION",
    "VERSION",
    "ImportReport",
    "SceneError",
    "ShotSpec",
    "add_subjects",
    "camera_settings",
    "edited_plan_cameras",
    "export_sequence",
    "fcurve_path_reason",
    "import_sequence",
    "read_shots",
    "read_subjects",
    "sample_timeline",
    "subjects_collection",
]
