"""Planner speed (issue 5): the grammar planner on 4-shot plans with a scene context.

Run from the repository root: ``.venv/bin/python benchmarks/planner.py [--repeats N]``.

Each request is a 4-shot plan of 4 s shots (96 frames at 24 fps, 384 frames a plan) over a scene
with four subjects (two people, a fountain, a car with a 400-frame track), written the way people
describe shots: combined moves, speeds, easing, dialogue coverage, follow shots, handheld. The
requests are planned round-robin after one untimed warm-up pass; every timed call is one full
``GrammarPlanner().plan(request)`` (parsing, camera paths, motion of every frame, object tracks
and the final ``ShotSequence.validate()``).

Baseline, in the same run: ``ShotSequence.validate()`` alone on the very sequences the planner
made (the least any planner returning a validated plan must spend). Prints the median and p95 of
both in milliseconds and the ratio of the medians. Target: median plan time at most 20 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backend.planning.base import (  # noqa: E402
    PlanRequest,
    SceneContext,
    SceneSubject,
    ShotPrompt,
)
from backend.planning.grammar import GrammarPlanner  # noqa: E402

SHOT_LISTS = [
    ["establishing shot of the fountain, slow crane down",
     "medium shot of Alice, the camera creeps closer",
     "reverse shot on Bob, handheld",
     "two shot of Alice and Bob, slowly arc left around them"],
    ["wide shot, pan right across the square, ease in and out",
     "follow the car as it drives past",
     "low angle close-up of Bob, very slowly push in",
     "whip pan to the fountain, then hold"],
    ["overhead shot of the fountain, a full orbit clockwise",
     "over the shoulder of Alice, looking at Bob",
     "the camera drifts left and tilts up to the sky, 3 seconds",
     "dolly zoom on Alice, 48 frames"],
    ["dutch angle medium close-up of Bob",
     "glance down at the floor, then look up at Alice",
     "pull back to reveal the whole square, fast",
     "the chef walks in as the camera rises slowly and zooms in"],
]


def scene() -> SceneContext:
    def subject(name: str, x: float, y: float, size: tuple[float, float, float],
                track: np.ndarray | None = None) -> SceneSubject:
        position = np.array([x, y, 0.0])
        half = np.array([size[0] / 2, size[1] / 2, 0.0])
        return SceneSubject(name, position, position - half,
                            position + half + np.array([0.0, 0.0, size[2]]), track)

    road = np.stack([np.linspace(-15, 15, 400), np.full(400, -8.0), np.zeros(400)], axis=1)
    return SceneContext(fps=24.0, resolution=(1280, 720), frame_start=1, subjects=[
        subject("Alice", -1.0, 0.0, (0.5, 0.5, 1.7)), subject("Bob", 1.2, 0.3, (0.5, 0.5, 1.85)),
        subject("Fountain", 6.0, 5.0, (3.0, 3.0, 1.2)),
        subject("Car", -15.0, -8.0, (4.5, 1.9, 1.5), road)])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50,
                        help="timed passes over the requests (default 50)")
    args = parser.parse_args()
    planner = GrammarPlanner()
    requests = [PlanRequest("a square with a fountain", [ShotPrompt(p) for p in shots], scene(),
                            seed=i) for i, shots in enumerate(SHOT_LISTS)]
    sequences = [planner.plan(request).sequence for request in requests]  # warm-up, untimed
    plan_ms, validate_ms = [], []
    for _ in range(args.repeats):
        for request, sequence in zip(requests, sequences, strict=True):
            start = time.perf_counter()
            planner.plan(request)
            plan_ms.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            sequence.validate()
            validate_ms.append((time.perf_counter() - start) * 1e3)
    frames = sum(shot.num_frames for shot in sequences[0].shots)
    print(f"machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"requests: {len(requests)} x 4 shots ({frames} frames in the first), "
          f"{len(plan_ms)} timed plans")
    print(f"grammar plan:           median {statistics.median(plan_ms):7.2f} ms   "
          f"p95 {percentile(plan_ms, 95):7.2f} ms")
    print(f"validate alone (base):  median {statistics.median(validate_ms):7.2f} ms   "
          f"p95 {percentile(validate_ms, 95):7.2f} ms")
    ratio = statistics.median(plan_ms) / statistics.median(validate_ms)
    print(f"ratio plan / validate (medians): {ratio:.1f}x; target: median plan <= 20 ms")


if __name__ == "__main__":
    main()
