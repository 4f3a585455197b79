"""``python -m backend demo``: the main job on its embedded default.

1. Build a small three-shot scene in headless Blender (a separate process with ``bpy``: the
   backend never imports it) and export its shots and subjects through the add-on's ``scene_io``.
2. Validate the exported ShotSequence against the contract and save it (JSON and ``.npz``).
3. Write one RealEstate10K / CameraCtrl pose file per shot, the format camera-control models read.
4. Plan a new three-shot sequence from a shot list with the grammar planner, around the scene's
   subjects, and print what each planned shot does (its motion labels).
5. Import the plan into the demo scene (a scene of its own, "Planned") as keyframed cameras and
   markers, and render a layout preview (Workbench playblast) of every planned shot.
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
from backend.planning import get_planner
from backend.planning.base import PlanRequest, PlanResult, SceneContext, ShotPrompt
from backend.planning.motion_labels import label_sequence

ROOT = Path(__file__).resolve().parents[1]


class DemoError(RuntimeError):
    """A demo step failed; the message says which and shows the step's own output."""


PLAN_PROMPT = "A small robot explores a sunlit plaza."
PLAN_SHOTS = (
    "Wide establishing shot of the robot, the camera slowly pushes in",
    "The camera circles around the robot",
    "Low angle close-up on the robot as the camera cranes up",
)


def run_blender(*args: str) -> str:
    """Run a headless Blender job (``python -m blender_addon.headless ...``); its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-m", "blender_addon.headless", *args], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    if result.returncode:
        raise DemoError(f"headless Blender failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def export_demo_scene(out_dir: Path) -> Path:
    """Run the headless Blender job that builds and exports the demo scene; returns the JSON."""
    scene_json = out_dir / "demo_scene.shots.json"
    run_blender("demo", "--out", str(scene_json), "--blend", str(out_dir / "demo_scene.blend"))
    return scene_json


def scene_context(sequence: shots_io.ShotSequence) -> dict:
    """The planner's scene context from an exported sequence: subjects at the first frame (world
    boxes from their own boxes and rotations) with their tracks, the first shot's camera, fps and
    resolution."""
    subjects = []
    for obj in sequence.objects:
        # (8, 3): every corner of the object's own box.
        corners = np.stack(np.meshgrid(*np.stack([obj.bbox_min, obj.bbox_max], axis=1),
                                       indexing="ij"), axis=-1).reshape(-1, 3)
        rotation = obj.rotations[0] if obj.rotations is not None else np.eye(3)
        world = corners @ rotation.T + obj.positions[0]
        # The track lets the planner find a walking subject where it is when each shot starts.
        subjects.append({"name": obj.name, "position": obj.positions[0].tolist(),
                         "bbox_min": world.min(axis=0).tolist(),
                         "bbox_max": world.max(axis=0).tolist(),
                         "track": obj.positions.tolist()})
    first = sequence.shots[0]
    return {"fps": sequence.fps, "resolution": list(sequence.resolution),
            "frame_start": sequence.frame_start, "subjects": subjects,
            "camera": {"c2w": first.c2w[0].tolist(), "K": first.K[0].tolist()}}


def plan_demo(sequence: shots_io.ShotSequence, out_dir: Path) -> tuple[Path, PlanResult]:
    """Plan :data:`PLAN_SHOTS` around the demo's subjects with the grammar planner."""
    request = PlanRequest(prompt=PLAN_PROMPT, shots=[ShotPrompt(text) for text in PLAN_SHOTS],
                          scene=SceneContext.from_dict(scene_context(sequence)))
    result = get_planner("grammar").plan(request)
    return shots_io.save(result.sequence, out_dir / "demo_plan.shots.json"), result


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
    print("4. planning three new shots from a shot list (grammar planner):")
    plan_path, plan = plan_demo(sequence, out_dir)
    labels = label_sequence(plan.sequence)
    for shot in plan.sequence.shots:
        moves = "; ".join(f"{s.translation}, {s.rotation}, {s.zoom} (frames {s.start}-{s.end})"
                          for s in labels[shot.name])
        print(f"   {shot.name} \"{shot.prompt}\": {moves}")
    for warning in plan.warnings:
        print(f"   warning: {warning}")
    print(f"   plan: {plan_path}")
    print("5. importing the plan into the demo scene and rendering layout previews:")
    output = run_blender("plan-previews", "--blend", str(out_dir / "demo_scene.blend"),
                         "--plan", str(plan_path), "--previews", str(out_dir),
                         "--save", str(out_dir / "demo_planned.blend"))
    for line in output.splitlines():
        if line.startswith(("plan imported", "layout preview")):
            print(f"   {line}")
    print(f"   scene with the plan: {out_dir / 'demo_planned.blend'}")
    print(f"done: everything is in {out_dir}")
