"""``python -m engine train CONFIG`` (alone or under ``torchrun``) and ``campaign`` jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import ConfigError
from engine.training.config import TrainConfig


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
    p.add_argument(
        "--stop-after",
        type=float,
        metavar="MINUTES",
        help="save and stop after this much wall-clock time, leaving the learning-rate schedule "
        "as it is, so a later --resume continues it (time-boxed jobs)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1, … (default: CUDA if available)")
    p.set_defaults(run=run)

    p = subparsers.add_parser(
        "campaign",
        help="one time-boxed job: generate data on the CPU cores while training on the GPU",
        description="Runs datagen in the background, trains on the trajectories as they land, "
        "stops before --minutes, evaluates, and leaves checkpoint + metrics.json in --out. "
        "Pass the previous job's folder as --resume to continue the campaign.",
    )
    p.add_argument("config", type=Path, help="training config (JSON; see configs/)")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoint and metrics")
    p.add_argument(
        "--resume",
        type=Path,
        help="previous job's folder; an empty one starts a new campaign",
    )
    p.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget of the job (9)")
    p.add_argument("--workers", type=int, help="datagen worker processes (default: cores − 2)")
    p.add_argument("--data", type=Path, help="datagen output folder (default: a temporary one)")
    p.add_argument(
        "--datagen-steps", type=int, help="steps per generated trajectory (default: datagen's, 600)"
    )
    p.add_argument(
        "--datagen-max-dt",
        type=float,
        metavar="SECONDS",
        help="cap the solver's internal step while generating (datagen --max-dt)",
    )
    p.add_argument(
        "--datagen-count",
        type=int,
        default=10_000,
        help="trajectories to generate; fewer leaves the GPU to training sooner (10000)",
    )
    p.add_argument(
        "--datagen-device",
        default="cpu",
        help="cuda: generate data with the batched GPU solver, beside training (default: cpu)",
    )
    p.add_argument(
        "--testset",
        type=Path,
        help="held-out trajectories to evaluate on (default: this job's valid + test splits)",
    )
    p.add_argument(
        "--eval-minutes",
        type=float,
        default=1.0,
        help="time kept back for evaluation and saving (1)",
    )
    p.add_argument("--eval-steps", type=int, default=100, help="rollout steps per test case")
    p.add_argument("--seed", type=int, default=0, help="base datagen seed of the campaign")
    p.set_defaults(run=run_campaign)


def run(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from engine.training.distributed import join_world, leave_world
    from engine.training.trainer import Trainer

    config = TrainConfig.load(args.config)
    if args.data is not None:
        config = config.replace(data=str(args.data.resolve()))
    if args.minutes is not None:
        config = config.replace(time_minutes=args.minutes)
    out = args.out or Path("runs") / args.config.stem
    world = join_world(args.device)
    try:
        deadline = None if args.stop_after is None else time.monotonic() + 60.0 * args.stop_after
        trainer = Trainer(config, out, world, resume=args.resume, deadline=deadline)
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


def run_campaign(args: argparse.Namespace) -> int:
    from engine.training.campaign import CampaignJob, is_checkpoint, run_job

    resume = None
    if args.resume is not None:
        # A chain hands each job the previous job's folder; the first gets an empty one. A path
        # that is not there at all is a typo or an uncopied folder: training from scratch
        # instead would spend the whole job on a model nobody asked for.
        if not args.resume.is_dir():
            raise ConfigError(f"--resume {args.resume}: no such folder")
        if is_checkpoint(args.resume):
            resume = args.resume
        else:
            print(f"campaign: {args.resume} holds no checkpoint: a new campaign", file=sys.stderr)
    job = CampaignJob(
        config=TrainConfig.load(args.config),
        out=args.out,
        resume=resume,
        minutes=args.minutes,
        data=args.data,
        datagen_steps=args.datagen_steps,
        datagen_max_dt=args.datagen_max_dt,
        count=args.datagen_count,
        datagen_device=args.datagen_device,
        testset=args.testset,
        eval_minutes=args.eval_minutes,
        eval_steps=args.eval_steps,
        seed=args.seed,
        **({"workers": args.workers} if args.workers else {}),
    )
    metrics = run_job(job)
    print(
        json.dumps(
            {k: metrics[k] for k in ("job", "training", "trajectories", "seconds")}, default=str
        )
    )
    return 0
