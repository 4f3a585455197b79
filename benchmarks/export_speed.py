"""Export speed (issue 3): the fcurve path of ``sample_timeline`` against the naive frame loop.

Run from the repository root: ``.venv/bin/python benchmarks/export_speed.py``. Builds, in headless
Blender, 300 keyframed subjects and one keyframed camera over 2,000 frames cut into 4 shots (4
markers bound to the camera), then times in the same run (a) and (b) several times, interleaved so
that both see the same machine load, and (c):

(a) the naive loop: per shot, per frame ``scene.frame_set(f)`` and ``matrix_world`` (and lens) of
    the camera and every subject;
(b) ``sample_timeline`` (every object here is on the fcurve path, so no frame is stepped);
(c) the full ``export_sequence``.

It checks that (a) and (b) give the same matrices (max abs difference) and prints every time, the
medians and the ratio (a)/(b).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from blender_addon import scene_io  # noqa: E402
from blender_addon.scene_io import sampling  # noqa: E402

FRAMES = 2000
SHOTS = 4


def build_scene(subjects: int = 300, frames: int = FRAMES, seed: int = 0) -> bpy.types.Scene:
    """Keyframed subjects (location, rotation, scale; own key times each) and a keyframed camera."""
    rng = np.random.default_rng(seed)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    collection = bpy.data.collections.new(scene_io.SUBJECTS_COLLECTION)
    scene.collection.children.link(collection)
    for i in range(subjects):
        obj = bpy.data.objects.new(f"Subject{i:03d}", None)
        collection.objects.link(obj)
        keys = np.unique(np.concatenate([[1, frames], rng.integers(2, frames, 10)]))
        for frame in keys:
            obj.location = rng.uniform(-20.0, 20.0, 3)
            obj.rotation_euler = rng.uniform(-math.pi, math.pi, 3)
            obj.scale = rng.uniform(0.5, 2.0, 3)
            for path in ("location", "rotation_euler", "scale"):
                obj.keyframe_insert(path, frame=int(frame))
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    for frame in np.linspace(1, frames, 9).astype(int):
        camera.location = rng.uniform(-30.0, 30.0, 3)
        camera.rotation_euler = (rng.uniform(1.0, 1.5), 0.0, rng.uniform(-math.pi, math.pi))
        camera.data.lens = rng.uniform(24.0, 85.0)
        camera.keyframe_insert("location", frame=int(frame))
        camera.keyframe_insert("rotation_euler", frame=int(frame))
        camera.data.keyframe_insert("lens", frame=int(frame))
    for shot in range(SHOTS):
        first = 1 + shot * frames // SHOTS
        scene.timeline_markers.new(f"shot_{shot + 1:02d}0", frame=first).camera = camera
    scene.camera = camera
    return scene


def naive(scene: bpy.types.Scene) -> tuple[np.ndarray, np.ndarray]:
    """Per shot, per frame: frame_set, then read the camera and every subject."""
    shots = scene_io.read_shots(scene)
    subjects = scene_io.read_subjects(scene)
    cameras, poses = [], []
    current = scene.frame_current
    for shot in shots:
        for frame in range(shot.frame_start, shot.frame_end + 1):
            scene.frame_set(frame)
            data = shot.camera.data
            cameras.append((np.array(shot.camera.matrix_world, np.float64), data.lens,
                            data.shift_x, data.shift_y))
            poses.append([np.array(obj.matrix_world, np.float64) for obj in subjects])
    scene.frame_set(current)
    return np.stack([c[0] for c in cameras]), np.array(poses)


def fast(scene: bpy.types.Scene) -> sampling.TimelineSamples:
    shots = scene_io.read_shots(scene)
    cameras = list({shot.camera.name: shot.camera for shot in shots}.values())
    needed = {camera.name: [] for camera in cameras}
    for shot in shots:
        needed[shot.camera.name].extend(range(shot.frame_start, shot.frame_end + 1))
    return sampling.sample_timeline(scene, cameras, scene_io.read_subjects(scene), needed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5, help="runs of (a) and (b), interleaved")
    parser.add_argument("--export-repeats", type=int, default=1, help="runs of (c)")
    args = parser.parse_args()
    start = time.perf_counter()
    scene = build_scene(args.subjects)
    print(f"scene: {args.subjects} keyframed subjects + 1 keyframed camera, {FRAMES} frames, "
          f"{SHOTS} shots (built in {time.perf_counter() - start:.1f} s); "
          f"{os.cpu_count()} CPU cores, Blender {bpy.app.version_string}, numpy {np.__version__}")
    naive_times, fast_times = [], []
    for _ in range(args.repeats):  # interleaved, so that both see the same machine load
        start = time.perf_counter()
        cam_naive, subj_naive = naive(scene)
        naive_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        samples = fast(scene)
        fast_times.append(time.perf_counter() - start)
    export_times = []
    for _ in range(args.export_repeats):
        start = time.perf_counter()
        scene_io.export_sequence(scene)
        export_times.append(time.perf_counter() - start)

    cam = samples.cameras["Camera"]
    subj = np.stack([samples.subjects[obj.name] for obj in scene_io.read_subjects(scene)], 1)
    off_path = sum(reason is not None for reason in samples.reasons.values())
    print(f"sample_timeline: {len(samples.stepped_frames)} frames stepped, {off_path} objects "
          "off the fcurve path")
    print(f"max |diff| against the naive loop: camera matrices "
          f"{np.abs(cam.matrix_world - cam_naive).max():.2g}, subject matrices "
          f"{np.abs(subj - subj_naive).max():.2g}")
    t_naive, t_fast = statistics.median(naive_times), statistics.median(fast_times)
    print(f"(a) naive loop (frame_set + matrix_world): median {t_naive:.3f} s  "
          f"[{', '.join(f'{t:.2f}' for t in naive_times)}]")
    print(f"(b) sample_timeline:                       median {t_fast:.3f} s  "
          f"[{', '.join(f'{t:.3f}' for t in fast_times)}]")
    print(f"(c) export_sequence (whole export):        median "
          f"{statistics.median(export_times):.3f} s  [{len(export_times)} run(s)]")
    print(f"ratio (a)/(b): {t_naive / t_fast:.1f}x")


if __name__ == "__main__":
    main()
