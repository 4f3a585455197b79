"""Command-line commands of the evaluation: ``labels`` and ``eval planner``.

``backend.cli.build_parser`` calls :func:`add_commands`; the heavy imports (planners, formats)
happen inside the commands. Input errors are ValueErrors naming the file and field: the main CLI
prints them on one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LABEL_RESOLUTION = (1280, 720)
"""Resolution assumed for files without one: labels depend on relative focal changes only."""
DEFAULT_PROMPTS = Path(__file__).resolve().parents[2] / "data" / "eval" / "planner_prompts.jsonl"
"""The repository's own prompt file."""


def _segment_dict(segment: Any, fps: float) -> dict[str, Any]:
    return {"start": segment.start, "end": segment.end,
            "seconds": round(segment.num_frames / fps, 4), "translation": segment.translation,
            "rotation": segment.rotation, "zoom": segment.zoom}


def cmd_labels(args: argparse.Namespace) -> int:
    from backend.camera.formats import read_sequence
    from backend.planning.motion_labels import MIN_SEGMENT_S, label_sequence

    sequence = read_sequence(args.file, width=args.width or LABEL_RESOLUTION[0],
                             height=args.height or LABEL_RESOLUTION[1], fps=args.fps)
    labels = label_sequence(sequence, args.min_duration or MIN_SEGMENT_S)
    fps = sequence.fps
    if args.json:
        print(json.dumps({"file": str(args.file), "fps": fps, "shots": {
            name: [_segment_dict(segment, fps) for segment in segments]
            for name, segments in labels.items()}}, indent=2))
        return 0
    for shot in sequence.shots:
        print(f"{shot.name}: frames {shot.frame_start}..{shot.frame_end} ({shot.num_frames} at "
              f"{fps:g} fps)")
        for s in labels[shot.name]:
            print(f"  {s.start:>6}..{s.end:<6} {s.num_frames / fps:7.2f} s  "
                  f"{s.translation:<36} {s.rotation:<9} {s.zoom}")
    return 0


def _row(label: str, score: dict[str, float], shots: str = "", frames: str = "") -> str:
    return (f"{label:<34} {shots:>5} {frames:>7}  {score['translation']:>11.3f} "
            f"{score['rotation']:>8.3f} {score['zoom']:>6.3f} {score['mean']:>6.3f} "
            f"{score['joint']:>6.3f}")


def _describe(labels: Any) -> str:
    return f"{labels.translation} / {labels.rotation} / {labels.zoom}"


def cmd_eval_planner(args: argparse.Namespace) -> int:
    from backend.evaluation.planner_eval import METHOD, evaluate_planner, load_prompts

    entries = load_prompts(args.prompts)
    from backend.planning import get_planner

    planner = get_planner(args.planner, args.weights)
    shots = sum(len(entry.shots) for entry in entries)
    if not args.json:
        print(f"planner {args.planner} on {args.prompts}: {len(entries)} entries, {shots} shots")
        print(f"F1: {METHOD}")
        print(f"{'id':<34} {'shots':>5} {'frames':>7}  {'translation':>11} {'rotation':>8} "
              f"{'zoom':>6} {'mean':>6} {'joint':>6}")

    def show(result: Any) -> None:
        if args.json:
            return
        print(_row(result.id[:34], result.score.as_dict(), str(len(result.shots)),
                   str(result.score.frames)), flush=True)
        if args.details:
            for shot in result.shots:
                mark = "ok" if shot.dominant == shot.expected else "!!"
                print(f"  {mark} {shot.name}: expected {_describe(shot.expected)}; got "
                      f"{_describe(shot.dominant)}  [{shot.prompt}]")

    report = evaluate_planner(planner, entries, seed=args.seed, prompts=str(args.prompts),
                              on_entry=show)
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        print()
        return 0
    overall = report.overall
    print(_row("overall (all frames)", overall.as_dict(), str(shots), str(overall.frames)))
    print(_row("mean over entries", report.entry_mean))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``labels`` and ``eval`` on the main parser's subcommands."""
    labels = commands.add_parser("labels", help="print the camera-motion segments of each shot")
    labels.add_argument("file", help="any file `convert` reads")
    labels.add_argument("--json", action="store_true", help="JSON instead of a table")
    labels.add_argument("--width", type=int, help="image width, for inputs that lack it "
                                                  "(labels do not depend on it)")
    labels.add_argument("--height", type=int, help="image height, for inputs that lack it")
    labels.add_argument("--fps", type=float, help="frame rate, for inputs that lack it")
    labels.add_argument("--min-duration", type=float,
                        help="shortest segment in seconds (default: 1/3)")
    labels.set_defaults(func=cmd_labels)

    evaluate = commands.add_parser("eval", help="evaluation benchmarks")
    benchmarks = evaluate.add_subparsers(dest="eval_command", required=True)
    planner = benchmarks.add_parser("planner", help="plan a prompt file and score the motion "
                                                    "labels of the plans (weighted F1)")
    planner.add_argument("--prompts", default=str(DEFAULT_PROMPTS),
                         help="JSONL prompt file (default: the repository's "
                              "data/eval/planner_prompts.jsonl)")
    planner.add_argument("--planner", default="grammar", choices=("grammar", "learned"))
    planner.add_argument("--weights", help="weights folder, for the learned planner")
    planner.add_argument("--seed", type=int, default=0)
    planner.add_argument("--json", action="store_true", help="the full report as JSON")
    planner.add_argument("--details", action="store_true",
                         help="one line per shot: expected and dominant predicted labels")
    planner.set_defaults(func=cmd_eval_planner)
