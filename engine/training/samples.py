"""Training samples: (trajectory, step) pairs drawn from a dataset folder that may still be growing.

The sample list is rebuilt at every epoch from a fresh scan, so trajectories the data generator
finished during the last epoch join the next one. Under DDP only rank 0 scans and the others
receive its list: two ranks scanning a moment apart could see different files and desynchronise.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DistributedSampler

from engine.data.dataset import Split, open_dataset
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.geometry.mesh import TunnelMesh
from engine.rollout.reference import trajectory_mesh, trajectory_scenario
from engine.scenario import Scenario
from engine.training.distributed import World

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from engine.models.simulator import Simulator


@dataclass
class LoadedTrajectory:
    """A trajectory with what a step of training or validation needs besides its fields."""

    path: Path
    trajectory: Trajectory
    scenario: Scenario
    mesh: TunnelMesh
    static: Data  # the simulator's static graph, on the training device
    velocity: torch.Tensor  # [T, N, 2] on the training device
    pressure: torch.Tensor  # [T, N]


class TrajectoryCache:
    """Trajectories loaded on first use and kept, least recently used dropped past ``capacity``."""

    def __init__(self, simulator: Simulator, device: torch.device, capacity: int) -> None:
        self.simulator = simulator
        self.device = device
        self.capacity = capacity
        self._items: OrderedDict[Path, LoadedTrajectory] = OrderedDict()

    def get(self, path: Path) -> LoadedTrajectory:
        item = self._items.get(path)
        if item is None:
            trajectory = Trajectory.load(path)
            scenario = trajectory_scenario(trajectory, path.name)
            mesh = trajectory_mesh(trajectory, scenario)
            with torch.no_grad():
                static = self.simulator.prepare(mesh, scenario, self.device)
            item = LoadedTrajectory(
                path,
                trajectory,
                scenario,
                mesh,
                static,
                torch.as_tensor(trajectory.velocity, device=self.device),
                torch.as_tensor(trajectory.pressure, device=self.device),
            )
            self._items[path] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        self._items.move_to_end(path)
        return item


def scan(root: Path, split: Split, world: World) -> list[tuple[Path, int]]:
    """Rank 0's current list of (file, number of steps) of one split, on every rank."""
    listing: list[tuple[str, int]] | None = None
    if world.is_main and not root.is_dir():
        listing = []
    elif world.is_main:
        dataset = open_dataset(root)
        steps = {name: s["num_steps"] for name, s in dataset.manifest["trajectories"].items()}
        listing = [(str(p), steps[p.name]) for p in dataset.files(split)]
    return [(Path(p), n) for p, n in world.broadcast(listing)]


def wait_for_trajectories(root: Path, count: int, minutes: float, world: World) -> None:
    """Block until the training split holds ``count`` trajectories (datagen may be writing)."""
    deadline = time.monotonic() + 60.0 * minutes
    while True:
        ready = len(scan(root, "train", world))
        if ready >= count:
            return
        if world.broadcast(time.monotonic() > deadline):
            raise DataFormatError(
                f"{root}: {ready} training trajectories after {minutes:g} min, need {count}"
            )
        time.sleep(2.0)


def epoch_batches(
    files: list[tuple[Path, int]],
    horizon: int,
    batch_size: int,
    world: World,
    seed: int,
    epoch: int,
) -> list[list[tuple[Path, int]]]:
    """This rank's batches of (file, step) for one epoch: every usable step once, shuffled.

    A step t is usable when t + ``horizon`` is still in the trajectory (horizon 1 for one-step
    training, 1 + pushforward steps otherwise). The DistributedSampler gives every rank the same
    number of samples; an incomplete last batch is dropped, so ranks stay in lockstep.
    """
    pairs = [(path, t) for path, steps in files for t in range(steps - horizon)]
    if not pairs:
        return []
    sampler = DistributedSampler(
        range(len(pairs)), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    order = [pairs[i] for i in sampler]
    full = len(order) // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(full)]
