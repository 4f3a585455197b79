"""Command line: ``python -m backend <command>``.

Commands: ``demo`` (the main job on its embedded default) and ``convert`` (camera-path formats <->
ShotSequence). Errors in the user's input print one line naming the file and field, and exit 2.
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        # ShotSequenceError, FormatError and the format modules' errors are ValueErrors whose
        # message already names the file and field: show it, not a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2
