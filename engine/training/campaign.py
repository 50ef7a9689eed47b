"""One job of a training campaign: generate data on the cores while training on the GPU.

A job runs the data generator as a background process (fresh scenarios, seeded by how many jobs
came before), trains on whatever trajectories exist as they land, stops itself before its time
is up, evaluates on trajectories it never trained on, and leaves a complete checkpoint plus
``metrics.json`` in the output folder. Handing that folder to the next job as ``--resume``
continues the campaign: weights, optimizer moments and the learning-rate schedule all carry on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.data.datagen import failure_log
from engine.data.dataset import open_dataset
from engine.errors import ConfigError, SlipstreamError
from engine.evaluation.evaluate import evaluate_case, summarise
from engine.training.checkpoint import STATE_NAME, read_checkpoint
from engine.training.config import TrainConfig
from engine.training.distributed import join_world
from engine.training.trainer import Trainer

METRICS_NAME = "metrics.json"
MAX_FILE_BYTES = 16 * 2**20  # what a job may hand back per file
SEEDS_PER_JOB = 100_003  # datagen seeds of successive jobs never overlap
MAX_FAILURES_REPORTED = 10  # failed trajectories whose reasons metrics.json lists


@dataclass(frozen=True)
class CampaignJob:
    """Settings of one job; ``minutes`` is its whole wall-clock budget, start-up included."""

    config: TrainConfig
    out: Path
    resume: Path | None = None
    minutes: float = 9.0
    data: Path | None = None  # where datagen writes (default: a fresh temporary folder)
    testset: Path | None = None  # held-out trajectories (default: this job's valid+test splits)
    workers: int = max(1, (os.cpu_count() or 2) - 2)
    # Trajectories to ask datagen for. With the GPU solver, a few hundred per job give training
    # fresh scenarios and then leave it the GPU; the default outlasts any job.
    count: int = 10_000
    datagen_steps: int | None = None  # steps per generated trajectory (default: datagen's)
    datagen_max_dt: float | None = None  # cap on the solver's internal step (default: its rule)
    # "cuda": the batched GPU solver (docs/gpu-datagen.md), ~1,000 trajectories of 600 frames
    # at 2k vertices in 10 minutes on an H200 against ~70 from 16 CPU cores; it shares the GPU
    # with training, and the cores then only mesh and write.
    datagen_device: str = "cpu"
    eval_minutes: float = 1.0  # kept back for evaluation and saving
    eval_steps: int = 100
    seed: int = 0


def _start_datagen(job: CampaignJob, data: Path, seed: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "engine", "datagen", "--count", str(job.count)]
    command += ["--seed", str(seed), "-o", str(data), "--workers", str(job.workers), "--quiet"]
    if job.datagen_steps is not None:
        command += ["--steps", str(job.datagen_steps)]
    if job.datagen_max_dt is not None:
        command += ["--max-dt", repr(job.datagen_max_dt)]
    if job.datagen_device != "cpu":
        command += ["--device", job.datagen_device]
    with log.open("w") as out:
        # Its own session, so stopping it reaches its worker processes too.
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen, grace: float = 10.0) -> int | None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def _evaluate(trainer: Trainer, files: list[Path], steps: int, deadline: float) -> dict[str, Any]:
    """Evaluate case by case until the files or the time run out."""
    from engine.data.trajectory import Trajectory

    cases = []
    for path in files:
        if time.monotonic() >= deadline:
            break
        cases.append(
            evaluate_case(
                trainer.simulator,
                Trajectory.load(path),
                path.stem,
                steps=steps,
                long_steps=0,
                device=trainer.device,
            )
        )
    compact = [
        {
            k: c.get(k)
            for k in (
                "case",
                "nodes",
                "steps",
                "diverged_at",
                "rollout_rmse_relative",
                "one_step_rmse_relative",
            )
        }
        for c in cases
    ]
    return {"mean": summarise(cases), "cases": compact} if cases else {}


def seed_note(config: TrainConfig, seed: int) -> str | None:
    """A warning when a campaign that starts from trained weights draws already-used scenarios.

    Datagen's seed counts this campaign's jobs, so the first job of every campaign with the same
    ``--seed`` draws the same scenarios. A campaign that continues a shipped model with
    ``init_weights`` would then train it again on the data its first campaign began with.
    """
    # The job's seed is 0 only for the first job of a campaign run with --seed 0.
    if config.init_weights is None or seed != 0:
        return None
    return (
        f"campaign: starting from {config.init_weights} with --seed 0 draws the scenarios every "
        "campaign's first job drew; pass another --seed for fresh ones"
    )


def schedule_note(config: TrainConfig, train_seconds: float, window_minutes: float) -> str | None:
    """Why a job will stop training early, when its campaign's schedule ends inside it.

    ``time_minutes`` is the whole campaign's schedule, so a chained job can find most of it
    spent and train for a fraction of its GPU time (a 2026-11-30 job trained 88 s of 5 min).
    Saying so when training starts lets whoever chains the jobs raise ``time_minutes`` instead.
    """
    if config.time_minutes is None:
        return None
    left = max(0.0, config.time_minutes - train_seconds / 60.0)
    if left >= window_minutes:
        return None
    return (
        f"campaign: {left:.1f} of the schedule's {config.time_minutes:g} minutes are left, so "
        f"this job stops training {window_minutes - left:.1f} minutes before its deadline; "
        "raise time_minutes in the config to train for the whole job"
    )


def run_job(job: CampaignJob) -> dict[str, Any]:
    """Run one campaign job; returns (and writes) its metrics."""
    start = time.monotonic()
    end = start + 60.0 * job.minutes
    if job.minutes <= job.eval_minutes:
        raise ConfigError(f"minutes ({job.minutes}) must exceed eval_minutes ({job.eval_minutes})")
    previous_jobs = read_checkpoint(job.resume).state.jobs if job.resume is not None else 0
    seed = job.seed + SEEDS_PER_JOB * previous_jobs
    if (warning := seed_note(job.config, seed)) is not None:
        print(warning, file=sys.stderr)
    data = job.data or Path(tempfile.mkdtemp(prefix="slipstream-campaign-"))
    data.mkdir(parents=True, exist_ok=True)
    job.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - job.workers))
    datagen = _start_datagen(job, data, seed, data / "datagen.log")
    try:
        # Waiting for the first trajectories may use all the training time, not more.
        wait = (end - 60.0 * job.eval_minutes - time.monotonic()) / 60.0
        config = job.config.replace(data=str(data.resolve()), wait_minutes=max(0.1, wait))
        trainer = Trainer(
            config, job.out, join_world(), resume=job.resume, deadline=end - 60.0 * job.eval_minutes
        )
        # Judged after the first step, once the data wait is over: the wait comes off the job's
        # training window too (judged before it, a 2026-11-30 job warned of a shortfall that
        # the wait had already absorbed). A schedule spent before any step yields none.
        steps = trainer.run()
        first = next(steps, None)
        window = (end - 60.0 * job.eval_minutes - time.monotonic()) / 60.0
        note = schedule_note(config, trainer.state.train_seconds, window)
        if note:
            print(note, file=sys.stderr)
        reports = ([] if first is None else [first]) + list(steps)
    except SlipstreamError as exc:
        # Say why in the job's output too: a chained campaign reads metrics.json, not stderr.
        failure = {
            "error": str(exc),
            "datagen_seed": seed,
            "datagen_log": (data / "datagen.log").read_text()[-2000:],
        }
        (job.out / METRICS_NAME).write_text(json.dumps(failure, indent=1) + "\n")
        raise
    finally:
        datagen_status = _stop(datagen)
    last = reports[-1] if reports else None
    trained_at = time.monotonic()
    test_files = (
        open_dataset(job.testset).files()
        if job.testset is not None
        else open_dataset(data).files("valid") + open_dataset(data).files("test")
    )
    evaluation = _evaluate(trainer, test_files, job.eval_steps, end - 15.0)
    dataset = open_dataset(data)
    metrics = {
        "job": trainer.state.jobs,
        "datagen_seed": seed,
        "datagen_exit": datagen_status,
        # Why trajectories failed (the data folder is usually temporary); the first few.
        "datagen_failures": [
            {"name": e.get("name"), "error": str(e.get("error"))[:500]}
            for e in failure_log(data)[:MAX_FAILURES_REPORTED]
        ],
        "datagen_device": job.datagen_device,
        "datagen_max_dt": job.datagen_max_dt,
        "trajectories": {split: len(dataset.files(split)) for split in ("train", "valid", "test")},
        "training": trainer.summary(),
        "final_loss": None if last is None else last.loss,
        "final_lr": None if last is None else last.lr,
        "schedule_fraction": None if last is None else last.fraction,
        "schedule_note": note,
        "evaluation": evaluation,
        "testset": str(job.testset) if job.testset else "this job's valid + test splits",
        "seconds": {"training": trained_at - start, "total": time.monotonic() - start},
        "device": str(trainer.device),
    }
    metrics["oversized_files"] = [
        p.name for p in job.out.iterdir() if p.is_file() and p.stat().st_size > MAX_FILE_BYTES
    ]
    (job.out / METRICS_NAME).write_text(json.dumps(metrics, indent=1, default=str) + "\n")
    return metrics


def is_checkpoint(path: Path) -> bool:
    return (path / STATE_NAME).is_file()
