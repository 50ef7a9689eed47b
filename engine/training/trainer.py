"""The training loop: one-step and pushforward losses, AdamW, DDP, checkpoints, validation rollouts.

:meth:`Trainer.run` is a generator yielding a :class:`Progress` after every optimizer step, so
the CLI draws a progress bar from it, a campaign stops it at a deadline and the app could run it
in a worker thread, all without the loop knowing who listens.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import Batch

from engine.errors import ConfigError, DataFormatError
from engine.evaluation.evaluate import evaluate_case, summarise
from engine.models.card import Range, TrainingEnvelope
from engine.models.simulator import (
    Simulator,
    SimulatorConfig,
    collate_statics,
    make_training_sample,
)
from engine.scenario import Scenario
from engine.training.checkpoint import TrainerState, read_checkpoint, save_checkpoint
from engine.training.config import TrainConfig
from engine.training.distributed import World
from engine.training.samples import (
    LoadedTrajectory,
    TrajectoryCache,
    epoch_batches,
    scan,
    wait_for_trajectories,
)
from engine.training.schedule import learning_rate

LOG_NAME = "log.csv"
LOG_FIELDS = (
    "step",
    "epoch",
    "samples",
    "train_seconds",
    "lr",
    "loss",
    "samples_per_s",
    "val_velocity_rel",
    "val_pressure_rel",
    "val_one_step_velocity_rel",
    "val_diverged_at",
)


@dataclass(frozen=True)
class Progress:
    """One optimizer step's report; ``fraction`` is how far through the run's schedule it is.

    ``loss`` is the mean over the last logging window (NaN before the first): reading every
    step's loss would make the host wait for the GPU each step instead of preparing the next
    batch while the GPU works.
    """

    step: int
    epoch: int
    loss: float
    lr: float
    fraction: float
    samples_per_s: float
    validation: dict[str, float | None] | None = None


def data_hash(previous: str, paths: list[Path]) -> str:
    """A short fingerprint of the training files' names, chained onto earlier runs' fingerprint."""
    h = hashlib.sha256(previous.encode())
    for path in sorted(paths):
        h.update(f"{path.name}\n".encode())
    return h.hexdigest()[:16]


def _span(a: Range | None, b: Range | None) -> Range | None:
    if a is None or b is None:
        return a if b is None else b
    return (min(a[0], b[0]), max(a[1], b[1]))


def merge_envelopes(a: TrainingEnvelope, b: TrainingEnvelope) -> TrainingEnvelope:
    """The smallest envelope holding both: a resumed run has seen its predecessors' data too."""
    return TrainingEnvelope(
        reynolds=_span(a.reynolds, b.reynolds),
        shape_classes=tuple(sorted({*a.shape_classes, *b.shape_classes})),
        nodes=_span(a.nodes, b.nodes),
        dt_nondim=_span(a.dt_nondim, b.dt_nondim),
        walls=tuple(sorted({*a.walls, *b.walls})),
        profiles=tuple(sorted({*a.profiles, *b.profiles})),
    )


def _initial_weights(config: TrainConfig, device: torch.device) -> Simulator:
    """The model ``init_weights`` names, checked against the config's architecture."""
    simulator = Simulator.load(config.init_path, device)
    wanted = SimulatorConfig.from_dict(config.model)
    card = simulator.card
    if card.architecture != wanted.architecture:
        raise ConfigError(
            f"init_weights: {config.init_weights} is a {card.architecture}, "
            f"but model names {wanted.architecture}"
        )
    # The result is a new model: the config names it, and its card says where it started.
    # The start's measurements describe other weights, so none of them carry over (its
    # settings, such as the projection's pressure, do until an evaluation changes them).
    card.description = (
        f"Started from {config.init_weights} ({card.name}), whose card said: {card.description}"
    )
    card.name = wanted.name
    card.metrics = {}
    return simulator


def lr_of(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class Trainer:
    """Trains a simulator from a :class:`TrainConfig`, optionally resuming a checkpoint folder.

    ``deadline`` (a ``time.monotonic()`` value) stops the run early whatever the config says;
    a campaign uses it to leave time for evaluation inside its job.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        world: World,
        *,
        resume: str | Path | None = None,
        deadline: float | None = None,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.world = world
        self.deadline = deadline
        self.device = world.device
        torch.manual_seed(config.seed + 1000 * world.rank)
        self.rng = random.Random(config.seed + 1000 * world.rank)
        if resume is not None:
            checkpoint = read_checkpoint(resume)
            self.simulator = Simulator.load(checkpoint.model_path, self.device)
            self.state = checkpoint.state
        elif config.init_weights is not None:
            self.simulator = _initial_weights(config, self.device)
            # The card's GPU minutes keep counting, so a fine-tuned model reports its whole cost.
            self.state = TrainerState(gpu_minutes=self.simulator.card.gpu_minutes)
        else:
            self.simulator = Simulator.from_config(SimulatorConfig.from_dict(config.model))
            self.simulator.to(self.device)
            self.state = TrainerState()
        self.state.config = config.to_dict()
        self.state.jobs += 1
        self.optimizer = torch.optim.AdamW(
            self.simulator.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        if resume is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        if config.compile:
            # Only the network: it takes plain tensors. Dynamo cannot trace the simulator's
            # PyG ``Data`` handling (torch 2.11 stops with "SuperVariable" inside predict), and
            # compiling in place keeps the state-dict keys, so checkpoints are the same.
            # dynamic=True: every batch has another node count.
            self.simulator.network.compile(dynamic=True)
        # The simulator's forward() is its loss, so DDP can wrap it directly.
        loss_module: nn.Module = self.simulator
        if world.distributed:
            loss_module = DistributedDataParallel(
                loss_module, device_ids=[self.device] if self.device.type == "cuda" else None
            )
        self.loss_module = loss_module
        self.base_envelope = self.simulator.card.envelope
        self.base_hash = self.simulator.card.data_hash
        self.seen: dict[Path, tuple[Scenario, int]] = {}
        self.cache = TrajectoryCache(self.simulator, self.device, config.cache_trajectories)

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> Iterator[Progress]:
        """Train until the epochs or minutes run out (or the deadline); checkpoint at the end."""
        cfg, world = self.config, self.world
        if cfg.batch_size % world.size:
            raise ConfigError(
                f"batch_size {cfg.batch_size} must be divisible by the {world.size} processes"
            )
        per_rank = cfg.batch_size // world.size
        root = cfg.data_dir
        wait = cfg.wait_minutes
        if self.deadline is not None:  # a run told to stop by then must not wait past it
            wait = min(wait, max(0.0, (self.deadline - time.monotonic()) / 60.0))
        wait_for_trajectories(root, cfg.min_trajectories, wait, world)
        self.simulator.train()
        losses: list[torch.Tensor] = []
        logged_loss = math.nan
        tick = last_log_time = time.monotonic()
        last_log_samples = self.state.samples
        stop = self._finished(0.0)
        while not stop:
            files = scan(root, "train", world)
            batches = epoch_batches(
                files, 1 + cfg.pushforward_steps, per_rank, world, cfg.seed, self.state.epoch
            )
            if not batches:
                raise DataFormatError(
                    f"{root}: too few training steps for one batch of {per_rank} per process"
                )
            for i, batch in enumerate(batches):
                within = (i + 1) / len(batches)
                lr = learning_rate(
                    self.state.step,
                    self._fraction(within),
                    peak=cfg.lr,
                    floor=cfg.min_lr,
                    warmup_steps=cfg.warmup_steps,
                )
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                losses.append(self._optimizer_step(batch))
                now = time.monotonic()
                self.state.step += 1
                self.state.samples += cfg.batch_size
                if within == 1.0:
                    self.state.epoch += 1
                    within = 0.0
                # Rank 0's clock and stop decision rule, so every rank keeps the same schedule.
                elapsed, stop_flag = world.share([now - tick, float(self._due(within))])
                tick = now
                self.state.train_seconds += elapsed
                if self.device.type == "cuda":
                    self.state.gpu_minutes += world.size * elapsed / 60.0
                stop = bool(stop_flag)
                validation = None
                validating = bool(cfg.val_every) and self.state.step % cfg.val_every == 0
                if validating and not stop:
                    validation = self.validate_and_save()
                rate = cfg.batch_size / max(elapsed, 1e-9)
                if validating or self.state.step % cfg.log_every == 0:
                    rate = (self.state.samples - last_log_samples) / max(now - last_log_time, 1e-9)
                    last_log_samples, last_log_time = self.state.samples, now
                    logged_loss = world.mean(float(torch.stack(losses).mean()))
                    self._log(lr, logged_loss, rate, validation)
                    losses.clear()
                yield Progress(
                    self.state.step,
                    self.state.epoch,
                    logged_loss,
                    lr,
                    self._fraction(within),
                    rate,
                    validation,
                )
                if stop:
                    break
        final = self.validate_and_save()
        if final:
            self._log(lr_of(self.optimizer), float("nan"), 0.0, final)

    def _fraction(self, within_epoch: float) -> float:
        """Progress through the schedule: the further along of epochs and minutes."""
        cfg = self.config
        parts = []
        if cfg.epochs is not None:
            parts.append((self.state.epoch + within_epoch) / cfg.epochs)
        if cfg.time_minutes is not None:
            parts.append(self.state.train_seconds / (60.0 * cfg.time_minutes))
        return min(max(parts), 1.0)

    def _due(self, within_epoch: float) -> bool:
        """Whether this process thinks the run is over (only rank 0's opinion is used)."""
        return self._fraction(within_epoch) >= 1.0 - 1e-12 or (
            self.deadline is not None and time.monotonic() >= self.deadline
        )

    def _finished(self, within_epoch: float) -> bool:
        return bool(self.world.share([float(self._due(within_epoch))])[0])

    def _samples(self, batch: list[tuple[LoadedTrajectory, int]]) -> list[Any]:
        """Training graphs from (trajectory, step t) pairs; those the dice pick start from the
        model's own state after ``pushforward_steps`` steps instead of the solver's.

        The picked flows advance together, one network call per pushforward step
        (:meth:`Simulator.step_many`). Stepped one flow at a time, three pushforward steps cut
        the tiny transformer on an H200 from ~150 to 34 samples/s: small graphs are launch-bound
        there, and batching makes the launches per step instead of per sample.
        """
        cfg = self.config
        k = cfg.pushforward_steps
        picked = [i for i in range(len(batch)) if self.rng.random() < cfg.pushforward_prob]
        starts = [(item.velocity[t], item.pressure[t]) for item, t in batch]
        shift = [0] * len(batch)
        if k and picked:
            statics = [batch[i][0].static for i in picked]
            graph = statics[0] if len(statics) == 1 else collate_statics(statics)
            velocities = [starts[i][0] for i in picked]
            pressures = [starts[i][1] for i in picked]
            with torch.no_grad(), self._autocast():
                for j in range(k):
                    times = [float(batch[i][0].trajectory.time[batch[i][1] + j]) for i in picked]
                    stepped = self.simulator.step_many(graph, statics, velocities, pressures, times)
                    velocities = [v for v, _ in stepped]
                    pressures = [p for _, p in stepped]
            for i, velocity, pressure in zip(picked, velocities, pressures, strict=True):
                starts[i] = (velocity.float(), pressure.float())
                shift[i] = k
        return [
            make_training_sample(
                item.static,
                velocity,
                pressure,
                item.velocity[t + shift[i] + 1],
                item.pressure[t + shift[i] + 1],
                cfg.noise_std,
            )
            for i, ((item, t), (velocity, pressure)) in enumerate(zip(batch, starts, strict=True))
        ]

    def _autocast(self) -> torch.autocast:
        enabled = self.config.bf16 and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _optimizer_step(self, batch: list[tuple[Path, int]]) -> torch.Tensor:
        pairs = []
        for path, t in batch:
            item = self.cache.get(path)
            self.seen[path] = (item.scenario, item.mesh.num_nodes)
            pairs.append((item, t))
        data = Batch.from_data_list(self._samples(pairs)).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.loss_module(data)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.simulator.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach()

    # ---- validation, logging, checkpoints --------------------------------------------------
    def validate(self) -> dict[str, float | None]:
        """Roll the model out on a few validation trajectories, as ``evaluate`` does."""
        from engine.data.dataset import open_dataset

        cfg = self.config
        files = open_dataset(cfg.data_dir).files("valid")[: cfg.val_trajectories]
        cases = [
            evaluate_case(
                self.simulator,
                self.cache.get(path).trajectory,
                path.stem,
                steps=cfg.val_steps,
                long_steps=0,
                device=self.device,
            )
            for path in files
        ]
        if not cases:
            return {}
        mean = summarise(cases)
        diverged = [c["diverged_at"] for c in cases if c["diverged_at"] is not None]
        return {
            "val_velocity_rel": mean["velocity_rmse_rel"],
            "val_pressure_rel": mean["pressure_rmse_rel"],
            "val_one_step_velocity_rel": mean["one_step_velocity_rmse_rel"],
            "val_diverged_at": min(diverged) if diverged else None,
        }

    def validate_and_save(self) -> dict[str, float | None] | None:
        """On rank 0: a validation rollout and a checkpoint (the others wait at the barrier)."""
        result = None
        if self.world.is_main:
            result = self.validate()
            self._update_card()
            save_checkpoint(self.out_dir, self.simulator, self.optimizer, self.state)
        self.world.barrier()
        return result

    def _update_card(self) -> None:
        """Envelope, data fingerprint and GPU minutes: the previous run's merged with this one's."""
        card = self.simulator.card
        if self.seen:
            covered = TrainingEnvelope.covering(self.seen.values())
            card.envelope = merge_envelopes(self.base_envelope, covered)
            card.data_hash = data_hash(self.base_hash, list(self.seen))
        card.gpu_minutes = self.state.gpu_minutes

    def _log(
        self, lr: float, loss: float, rate: float, validation: dict[str, float | None] | None
    ) -> None:
        if not self.world.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / LOG_NAME
        new = not path.exists()
        row = {
            "step": self.state.step,
            "epoch": self.state.epoch,
            "samples": self.state.samples,
            "train_seconds": round(self.state.train_seconds, 3),
            "lr": lr,
            "loss": loss,
            "samples_per_s": round(rate, 2),
            **(validation or {}),
        }
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)

    def summary(self) -> dict[str, Any]:
        """The run's counters, for the CLI's closing line and the campaign's metrics file."""
        state = asdict(self.state)
        state.pop("config")
        return state | {"trajectories_seen": len(self.seen)}
