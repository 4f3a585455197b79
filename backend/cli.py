"""Command line: ``python -m backend <command>``.

Commands: ``demo`` (the main job on its embedded default), ``convert`` (camera-path formats <->
ShotSequence) and ``serve`` (the HTTP backend for the add-on). Errors in the user's input print one
line naming the file and field, and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from backend.camera.formats import FORMATS, FormatError, read_sequence, write_sequence


def _guess_output_format(output: Path) -> str:
    if output.suffix == ".npz":
        return "npz"
    if output.suffix == ".txt":
        return "realestate10k"
    if output.suffix == ".json":
        return "shots"
    raise FormatError(f"{output}: cannot tell the output format from the name; give --to "
                      f"({'|'.join(FORMATS)})")


def cmd_convert(args: argparse.Namespace) -> int:
    output = Path(args.output)
    fmt = args.to or _guess_output_format(output)
    sequence = read_sequence(args.input, width=args.width, height=args.height, fps=args.fps)
    for name, path in write_sequence(sequence, output, fmt):
        shot = sequence.shot(name)
        print(f"{name}: frames {shot.frame_start}..{shot.frame_end} ({shot.num_frames}) "
              f"-> {path} [{fmt}]")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from backend.demo import run_demo

    run_demo(Path(args.out))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from backend.server import host_warning, serve
    from backend.server.lock import DataDirLock
    from backend.server.settings import Settings, parse_size

    warning = host_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr)
    settings = Settings.from_env(
        data_dir=args.data_dir,
        disk_limit_bytes=parse_size(args.disk_limit) if args.disk_limit else None,
        devices=tuple(args.device) if args.device else None,
        preload=tuple(name for name in args.preload if name != "none") if args.preload else None,
    )
    # Refuse at once, in one line, when another server or a `generate` holds the data folder
    # (the app checks again when it starts).
    DataDirLock(settings.data_dir, role="server").acquire().release()
    print(f"ShotBridge backend: http://{args.host}:{args.port} (API page /docs), data in "
          f"{settings.data_dir}, token in {settings.token_path}", file=sys.stderr, flush=True)
    serve(settings, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _progress_bar(job, width: int = 30) -> str:
    filled = round(job.progress * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {100 * job.progress:5.1f}%  {job.stage}"


def cmd_generate(args: argparse.Namespace) -> int:
    import base64

    from backend.server.local import run_job
    from backend.server.schemas import JobRequest
    from backend.server.settings import Settings

    sequence = read_sequence(args.shots, width=args.width, height=args.height, fps=args.fps)
    image = None
    if args.image:
        image = base64.b64encode(Path(args.image).read_bytes()).decode("ascii")
    body = JobRequest(model=args.model, sequence=sequence.to_dict(), shots=args.shot, image=image,
                      options={"seed": args.seed, "num_inference_steps": args.steps,
                               "num_frames": args.num_frames})
    settings = Settings.from_env(data_dir=args.data_dir)
    interactive = sys.stderr.isatty()
    last_line = ""

    def show(job) -> None:
        nonlocal last_line
        line = _progress_bar(job)
        if line != last_line:
            # A bar redrawn in place on a terminal; one line per change in a log.
            print(("\r" + line.ljust(78)) if interactive else line, end="" if interactive else
                  "\n", file=sys.stderr, flush=True)
            last_line = line

    job = run_job(settings, body, Path(args.out), on_change=show)
    if interactive:
        print(file=sys.stderr)
    if job.status != "succeeded":
        print(f"error: job {job.id} {job.status}: {job.error or job.stage}", file=sys.stderr)
        return 1
    print(f"{job.id}: {args.model}, shots {', '.join(job.shots)} -> {args.out}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    import time

    from backend.server.local import list_jobs
    from backend.server.settings import Settings

    settings = Settings.from_env(data_dir=args.data_dir)
    jobs = list_jobs(settings)
    if not jobs:
        print(f"no jobs in {settings.data_dir}")
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at))
        video = settings.jobs_dir / job.id / job.video if job.video else "-"
        print(f"{job.id}  {created}  {job.model:<22} {job.status:<11} {100 * job.progress:5.1f}%"
              f"  {job.error or job.stage}  {video}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    import imageio.v3 as iio

    from backend import shots as shots_io
    from backend.planning import get_planner
    from backend.planning.base import PlanRequest, SceneContext, ShotPrompt

    scene = None
    if args.scene:
        try:
            scene = SceneContext.from_dict(json.loads(Path(args.scene).read_text()))
        except json.JSONDecodeError as error:
            raise ValueError(f"{args.scene}: not valid JSON: {error}") from None
    image = iio.imread(args.image)[..., :3] if args.image else None
    request = PlanRequest(prompt=args.prompt, shots=[ShotPrompt(text) for text in args.shot],
                          scene=scene, image=image, seed=args.seed)
    result = get_planner(args.planner, Path(args.weights) if args.weights else None).plan(request)
    path = shots_io.save(result.sequence, Path(args.out))
    for shot in result.sequence.shots:
        print(f"{shot.name}: frames {shot.frame_start}..{shot.frame_end} "
              f"({shot.num_frames / result.sequence.fps:.2f} s) {shot.prompt}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"plan ({args.planner}) -> {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="build a demo scene in headless Blender and export it")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default: %(default)s)")
    demo.set_defaults(func=cmd_demo)

    convert = commands.add_parser("convert", help="convert between camera-path formats")
    convert.add_argument("input", help="ShotSequence .json/.npz, RealEstate10K .txt, nerfstudio "
                                       "camera_path.json or transforms.json")
    convert.add_argument("output", help="output file, or a folder for one file per shot")
    convert.add_argument("--to", choices=FORMATS, help="output format (default: from "
                                                                   "the output's extension)")
    convert.add_argument("--width", type=int, help="image width, for inputs that lack it")
    convert.add_argument("--height", type=int, help="image height, for inputs that lack it")
    convert.add_argument("--fps", type=float, help="frame rate, for inputs that lack it")
    convert.set_defaults(func=cmd_convert)

    serve = commands.add_parser("serve", help="run the HTTP backend the Blender add-on talks to")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default: %(default)s, this machine only; any other "
                            "address is reachable from the network and prints a warning)")
    serve.add_argument("--port", type=int, default=7862, help="port (default: %(default)s)")
    serve.add_argument("--data-dir", help="data folder: token, jobs, models.toml (default: "
                                          "$SHOTBRIDGE_HOME or the user data folder)")
    serve.add_argument("--disk-limit", help="bound on the job folders, e.g. 20G (default: "
                                            "$SHOTBRIDGE_DISK_LIMIT or 20G)")
    serve.add_argument("--device", action="append", help="run a worker on this device (cpu, "
                                                         "cuda:0); repeat for more (default: "
                                                         "every GPU, else the CPU)")
    serve.add_argument("--preload", action="append", help="load this model at start (default: "
                                                          "smoke-test; 'none' for none); repeat")
    serve.add_argument("--log-level", default="info",
                       choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(func=cmd_serve)

    generate = commands.add_parser("generate", help="run one generation job here, as the server "
                                                    "would, with a progress bar")
    generate.add_argument("--shots", required=True, help="ShotSequence (or any format `convert` "
                                                         "reads)")
    generate.add_argument("--out", required=True, help="MP4 to write")
    generate.add_argument("--model", default="smoke-test", help="model name (default: "
                                                                "%(default)s; see README Models)")
    generate.add_argument("--image", help="first-frame condition, PNG")
    generate.add_argument("--shot", action="append", help="only this shot; repeat for more")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    generate.add_argument("--num-frames", type=int, help="frames per shot (default: the model's)")
    generate.add_argument("--width", type=int, help="image width, for inputs that lack it")
    generate.add_argument("--height", type=int, help="image height, for inputs that lack it")
    generate.add_argument("--fps", type=float, help="frame rate, for inputs that lack it")
    generate.add_argument("--data-dir", help="data folder (default: as `serve`)")
    generate.set_defaults(func=cmd_generate)

    plan = commands.add_parser("plan", help="plan multi-shot cameras from a shot list")
    plan.add_argument("--prompt", default="", help="global prompt: what the sequence is about")
    plan.add_argument("--shot", action="append", required=True,
                      help="one shot's prompt, camera words included; repeat per shot, in order")
    plan.add_argument("--scene", help="scene context JSON (subjects, camera, fps, resolution), "
                                      "as the Blender add-on sends it")
    plan.add_argument("--image", help="viewport image, PNG (used by the learned planner)")
    plan.add_argument("--planner", default="grammar", choices=("grammar", "learned"))
    plan.add_argument("--weights", help="learned planner folder (save_pretrained layout)")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--out", required=True, help="ShotSequence to write (.json or .npz)")
    plan.set_defaults(func=cmd_plan)

    jobs = commands.add_parser("jobs", help="list the jobs stored in the data folder")
    jobs.add_argument("--data-dir", help="data folder (default: as `serve`)")
    jobs.set_defaults(func=cmd_jobs)

    from backend.evaluation.cli import add_commands as add_evaluation_commands

    add_evaluation_commands(commands)  # labels, eval
    from backend.training.cli import add_commands as add_training_commands
    add_training_commands(commands)  # train planner
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        args.passthrough_args = extra  # a command that parses its own options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        # ShotSequenceError, FormatError and the format modules' errors are ValueErrors whose
        # message already names the file and field: show it, not a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # The server's own refusals (ApiError: weights missing, bad option) and a data folder
        # held by a running server (DataDirBusy) reach the command line the same way.
        from backend.server.errors import ApiError
        from backend.server.lock import DataDirBusy

        if isinstance(error, (ApiError, DataDirBusy)):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise
