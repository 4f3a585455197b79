"""The ``train`` command: ``python -m backend train planner --data DIR --out DIR ...``.

:func:`add_commands` registers it on the main parser's sub-commands; torch, transformers and
accelerate are imported only when a training command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_train_planner(args: argparse.Namespace) -> int:
    from backend.training.train_planner import TrainPlannerConfig, train_planner

    if not args.tiny and args.vlm is None and not args.resume:
        raise ValueError("--vlm: give the local Qwen3-VL folder, or --tiny for a tiny test model")
    model = {}
    for key in ("frames_per_shot", "num_query_tokens", "decoder_layers", "token_layout"):
        value = getattr(args, key)
        if value is not None:
            model[key] = value
    config = TrainPlannerConfig(
        data=Path(args.data), out=Path(args.out), vlm=Path(args.vlm) if args.vlm else None,
        tiny=args.tiny, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
        weight_decay=args.weight_decay, l2_weight=args.l2_weight,
        wavelet_weight=args.wavelet_weight, seed=args.seed, save_every=args.save_every,
        log_every=args.log_every, resume=args.resume, mixed_precision=args.mixed_precision,
        lora_rank=args.lora_rank, model=model)
    history = train_planner(config)
    if history:
        print(json.dumps({"steps": history[-1]["step"], "loss": history[-1]["loss"],
                          "out": str(config.out)}))
    return 0


def cmd_train_controlnet(args: argparse.Namespace) -> int:
    from backend.training.train_controlnet import main

    return main(args.passthrough_args)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``train`` (sub-command ``planner``) on the main parser's sub-commands."""
    train = commands.add_parser("train", help="train a model (the learned planner)")
    models = train.add_subparsers(dest="model", required=True)
    planner = models.add_parser(
        "planner", help="train the learned shot planner on a folder of ShotSequence files",
        description="Train ShotVerse's planner (Qwen3-VL + LoRA, OPT trajectory decoder) with "
                    "accelerate; run under `accelerate launch -m backend train planner ...` for "
                    "several GPUs.")
    planner.add_argument("--data", required=True, help="folder of ShotSequence .json/.npz files "
                                                       "with prompts (+ images, same stem)")
    planner.add_argument("--out", required=True, help="output folder: the planner, checkpoints/")
    source = planner.add_mutually_exclusive_group()
    source.add_argument("--vlm", help="local Qwen3-VL folder (model, tokenizer, processor)")
    source.add_argument("--tiny", action="store_true", help="a tiny random planner (smoke test)")
    planner.add_argument("--steps", type=int, default=1000, help="optimizer steps (default: "
                                                                 "%(default)s)")
    planner.add_argument("--lr", type=float, default=1e-4, help="learning rate (default: "
                                                                "%(default)s)")
    planner.add_argument("--batch-size", type=int, default=4, help="sequences per step and "
                                                                   "process (default: %(default)s)")
    planner.add_argument("--weight-decay", type=float, default=0.0)
    planner.add_argument("--l2-weight", type=float, default=1e-4,
                         help="weight of the L2 term on camera codes (default: %(default)s)")
    planner.add_argument("--wavelet-weight", type=float, default=0.1,
                         help="weight of the wavelet regulariser (default: %(default)s)")
    planner.add_argument("--seed", type=int, default=0)
    planner.add_argument("--save-every", type=int, default=500,
                         help="checkpoint interval in steps (default: %(default)s)")
    planner.add_argument("--log-every", type=int, default=10)
    planner.add_argument("--resume", action="store_true",
                         help="continue from the latest checkpoint in --out")
    planner.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    planner.add_argument("--lora-rank", type=int, default=16)
    planner.add_argument("--frames-per-shot", type=int, help="keyframes per shot (default: 16; "
                                                             "tiny: 8)")
    planner.add_argument("--num-query-tokens", type=int, help="query tokens per shot (default: "
                                                              "8; tiny: 4)")
    planner.add_argument("--decoder-layers", type=int, help="OPT layers (default: 12; tiny: 2)")
    planner.add_argument("--token-layout", choices=("pose12", "gendop"),
                         help="trajectory token layout (default: pose12)")
    planner.set_defaults(func=cmd_train_planner)
    from backend.training.train_controller import add_arguments as add_controller_arguments
    add_controller_arguments(models.add_parser("controller", help="train the camera controller"))

    controlnet = models.add_parser(
        "controlnet", add_help=False,
        help="train the trajectory ControlNet (stages motion, camera, object)",
        description="Image Conductor's schedule; the options are those of "
                    "`python -m backend.training.train_controlnet --help`.")
    # Its options are train_controlnet's own (torch is imported only when it runs): the main
    # parser hands them over unparsed (``passthrough``).
    controlnet.set_defaults(func=cmd_train_controlnet, passthrough=True)

