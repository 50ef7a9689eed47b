"""``python -m engine train CONFIG``: train a simulator, alone or under ``torchrun``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from engine.training.config import TrainConfig
from engine.training.distributed import join_world, leave_world
from engine.training.trainer import Trainer


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a learned simulator from a JSON config",
        description="Train a simulator. Under torchrun every process runs this same command; "
        "the config's batch_size is the global batch, split across the processes.",
    )
    p.add_argument("config", type=Path, help="training config (JSON; see configs/)")
    p.add_argument("--resume", type=Path, help="checkpoint folder to continue from")
    p.add_argument("--out", type=Path, help="checkpoint/log folder (default: runs/CONFIG_NAME)")
    p.add_argument("--data", type=Path, help="dataset folder, overriding the config's")
    p.add_argument("--minutes", type=float, help="training time budget, overriding the config's")
    p.add_argument("--device", help="cpu, cuda, cuda:1, … (default: CUDA if available)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = TrainConfig.load(args.config)
    if args.data is not None:
        config = config.replace(data=str(args.data.resolve()))
    if args.minutes is not None:
        config = config.replace(time_minutes=args.minutes)
    out = args.out or Path("runs") / args.config.stem
    world = join_world(args.device)
    try:
        trainer = Trainer(config, out, world, resume=args.resume)
        bar = tqdm(
            total=1000,
            disable=not world.is_main,
            unit="‰",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
        )
        with bar:
            for progress in trainer.run():
                bar.update(int(1000 * progress.fraction) - bar.n)
                bar.set_postfix(
                    step=progress.step,
                    epoch=progress.epoch,
                    loss=f"{progress.loss:.4g}",
                    lr=f"{progress.lr:.2e}",
                    refresh=False,
                )
        if world.is_main:
            print(json.dumps({"checkpoint": str(out), **trainer.summary()}, default=str))
    finally:
        leave_world(world)
    return 0
