"""``python -m backend demo``: the main job on its embedded default.

1. Build a small three-shot scene in headless Blender (a separate process with ``bpy``: the
   backend never imports it) and export its shots and subjects through the add-on's ``scene_io``.
2. Validate the exported ShotSequence against the contract and save it (JSON and ``.npz``).
3. Write one RealEstate10K / CameraCtrl pose file per shot, the format camera-control models read.
4. Print what each shot does and where every file is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from backend import shots as shots_io
from backend.camera.formats import write_sequence
from backend.camera.se3 import relative_to_first

ROOT = Path(__file__).resolve().parents[1]


class DemoError(RuntimeError):
    """A demo step failed; the message says which and shows the step's own output."""


def export_demo_scene(out_dir: Path) -> Path:
    """Run the headless Blender job that builds and exports the demo scene; returns the JSON."""
    scene_json = out_dir / "demo_scene.shots.json"
    command = [sys.executable, "-m", "blender_addon.headless", "demo", "--out", str(scene_json),
               "--blend", str(out_dir / "demo_scene.blend")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise DemoError(f"headless Blender failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return scene_json


def describe_shot(shot: shots_io.Shot, fps: float) -> str:
    """One line: duration, camera travel and turn, focal range, subject visibility."""
    relative = relative_to_first(shot.c2w)
    travel = float(np.linalg.norm(np.diff(shot.c2w[:, :3, 3], axis=0), axis=1).sum())
    forward = relative[:, :3, 2]
    turn = float(np.degrees(np.arccos(np.clip(forward[-1] @ forward[0], -1.0, 1.0))))
    fx = shot.K[:, 0]
    seen = ", ".join(f"{s.name} {100 * s.visible.mean():.0f}%" for s in shot.subjects)
    return (f"{shot.name} [{shot.camera}] frames {shot.frame_start}-{shot.frame_end} "
            f"({shot.num_frames / fps:.2f} s): travels {travel:.2f} m, turns {turn:.1f} deg, "
            f"fx {fx.min():.0f}-{fx.max():.0f} px; in frame: {seen or 'no subjects'}")


def run_demo(out_dir: Path) -> None:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"1. building the demo scene in headless Blender -> {out_dir / 'demo_scene.blend'}")
    scene_json = export_demo_scene(out_dir)
    sequence = shots_io.load(scene_json)
    print(f"2. exported and validated {len(sequence.shots)} shots, {len(sequence.objects)} "
          f"subjects at {sequence.resolution[0]}x{sequence.resolution[1]}, {sequence.fps:g} fps")
    for shot in sequence.shots:
        print(f"   {describe_shot(shot, sequence.fps)}")
    npz = shots_io.save(sequence, out_dir / "demo_scene.shots.npz")
    print(f"   ShotSequence: {scene_json} (JSON), {npz} (npz)")
    print("3. RealEstate10K / CameraCtrl pose files, one per shot:")
    for name, path in write_sequence(sequence, out_dir / "realestate10k", "realestate10k"):
        print(f"   {name} -> {path}")
    print(f"done: everything is in {out_dir}")
