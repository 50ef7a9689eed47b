"""``python -m engine datagen``: random envelope scenarios → reference-solver trajectories.

Trajectory ``i`` is always ``traj-<i>.h5`` simulated from ``default_rng([seed, i])``, so the
dataset is the same however it is split: over processes (``--workers``), over machines or
torchrun ranks (``--rank/--world-size``: rank r takes i ≡ r mod W), and over restarts (finished
files are skipped; ``Trajectory.save`` writes ``.partial`` then renames, so a killed run leaves
nothing that looks finished). Failures are appended to ``failures.jsonl`` and not retried unless
asked, since the solver is deterministic.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import DataFormatError, SlipstreamError
from engine.solver.threads import single_threaded_blas

if TYPE_CHECKING:
    from engine.geometry.mesh import TunnelMesh
    from engine.scenario import Scenario
    from engine.solver.ipcs import SolverConfig

FAILURES_NAME = "failures.jsonl"


@dataclass(frozen=True)
class DatagenConfig:
    count: int
    seed: int
    out_dir: Path
    workers: int = 1
    steps: int | None = None  # default: the envelope's 600
    rank: int = 0
    world_size: int = 1
    retry_failed: bool = False
    solver: SolverConfig | None = None  # the solver's settings (default: its own)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise DataFormatError(f"--count must be at least 1 (got {self.count})")
        if self.workers < 1:
            raise DataFormatError(f"--workers must be at least 1 (got {self.workers})")
        if self.steps is not None and self.steps < 1:
            raise DataFormatError(f"--steps must be at least 1 (got {self.steps})")
        if not 0 <= self.rank < self.world_size:
            raise DataFormatError(f"rank {self.rank} is outside a world of size {self.world_size}")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one trajectory: written, already present, or failed (with why)."""

    index: int
    name: str
    status: str  # "written" | "skipped" | "failed"
    wall_time_s: float = 0.0
    num_nodes: int = 0
    error: str = ""


def trajectory_name(index: int) -> str:
    return f"traj-{index:06d}.h5"


def shard(count: int, rank: int, world_size: int) -> list[int]:
    """The indices of ``range(count)`` that rank ``rank`` of ``world_size`` generates."""
    return list(range(rank, count, world_size))


def scenario_for(seed: int, index: int):
    """The scenario of trajectory ``index``: independent of sharding and of the other draws."""
    from engine.data.envelope import sample_scenario

    scenario = sample_scenario(np.random.default_rng([seed, index]))
    return scenario.replace(name=Path(trajectory_name(index)).stem)


def write_reference_trajectory(
    scenario: Scenario,
    mesh: TunnelMesh,
    path: Path,
    started: float,
    attrs: dict | None = None,
    solver: SolverConfig | None = None,
) -> None:
    """Solve ``scenario`` on ``mesh`` with the reference solver and save it to ``path``.

    ``started`` (a ``time.perf_counter()`` value, taken before meshing) dates the solver's
    wall-time attribute; ``attrs`` adds provenance (seed, index, test-set membership);
    ``solver`` sets the solver (its internal step cap, say).
    """
    from engine.data.trajectory import Trajectory
    from engine.solver import solve
    from engine.solver.commands import solver_attrs

    frames = list(solve(scenario, mesh, config=solver))
    wall = time.perf_counter() - started
    merged = solver_attrs(scenario, wall, mesh.num_nodes, solver) | (attrs or {})
    Trajectory.from_frames(mesh, frames, scenario.to_dict(), merged).save(path)


def simulate_case(
    seed: int, index: int, out_dir: Path, steps: int | None, solver: SolverConfig | None = None
) -> CaseResult:
    """Mesh, solve and write one trajectory; never raises (a failure is a result)."""
    from engine.geometry import build_tunnel_mesh
    from engine.scenario import TimeSpec

    name = trajectory_name(index)
    start = time.perf_counter()
    num_nodes = 0
    try:
        scenario = scenario_for(seed, index)
        if steps is not None:
            scenario = scenario.replace(time=TimeSpec(scenario.time.dt, steps))
        mesh = build_tunnel_mesh(scenario)
        num_nodes = mesh.num_nodes
        write_reference_trajectory(
            scenario, mesh, out_dir / name, start, {"seed": seed, "index": index}, solver
        )
    except SlipstreamError as exc:
        return CaseResult(index, name, "failed", time.perf_counter() - start, num_nodes, str(exc))
    except Exception as exc:  # a solver bug must not stop a long run: log it with its traceback
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return CaseResult(index, name, "failed", time.perf_counter() - start, num_nodes, detail)
    return CaseResult(index, name, "written", time.perf_counter() - start, num_nodes)


def failure_log(out_dir: Path) -> list[dict]:
    """The entries of ``failures.jsonl`` (index, name, error, seed, time), oldest first.

    Why a reader: a GPU campaign's data folder is temporary, so the job copies these into its
    metrics; without them an exit status of 1 said that a trajectory failed, not why.
    """
    path = out_dir / FAILURES_NAME
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            entry["index"] = int(entry["index"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a torn last line from a killed run
        entries.append(entry)
    return entries


def recorded_failures(out_dir: Path) -> set[int]:
    return {entry["index"] for entry in failure_log(out_dir)}


def generate(config: DatagenConfig, cancel: threading.Event | None = None) -> Iterator[CaseResult]:
    """Produce this rank's share of the dataset, yielding one result per index as it finishes.

    The manifest is refreshed after every written file, so a trainer can start on the data
    while it is still being generated. Setting ``cancel`` stops submitting new cases; running
    ones finish.
    """
    from engine.data.dataset import open_dataset

    out = Path(config.out_dir)
    dataset = open_dataset(out, seed=config.seed, create=True)
    skip_failed = set() if config.retry_failed else recorded_failures(out)
    todo = []
    for index in shard(config.count, config.rank, config.world_size):
        name = trajectory_name(index)
        if (out / name).exists() or index in skip_failed:
            yield CaseResult(index, name, "skipped")
        else:
            todo.append(index)

    def record(result: CaseResult) -> CaseResult:
        if result.status == "failed":
            entry = {
                "index": result.index,
                "name": result.name,
                "error": result.error,
                "seed": config.seed,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            with (out / FAILURES_NAME).open("a") as f:
                f.write(json.dumps(entry) + "\n")
        else:
            dataset.refresh()
        return result

    if config.workers == 1:
        with single_threaded_blas():
            for index in todo:
                if cancel is not None and cancel.is_set():
                    return
                yield record(simulate_case(config.seed, index, out, config.steps, config.solver))
        return

    # fork: children inherit the imported engine; spawn would re-run ``python -m engine``.
    context = multiprocessing.get_context("fork")
    pending = iter(todo)
    with ProcessPoolExecutor(
        config.workers, mp_context=context, initializer=single_threaded_blas
    ) as pool:
        running: set[Future] = set()

        def submit_next() -> bool:
            if cancel is not None and cancel.is_set():
                return False
            index = next(pending, None)
            if index is None:
                return False
            args = (config.seed, index, out, config.steps, config.solver)
            running.add(pool.submit(simulate_case, *args))
            return True

        for _ in range(config.workers):
            submit_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                yield record(future.result())
                submit_next()


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.solver.commands import add_max_dt_option

    parser = subparsers.add_parser(
        "datagen",
        help="generate a training dataset with the reference solver",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--count", type=int, required=True, help="trajectories in the dataset")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (scenarios, splits)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="dataset folder")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel solver processes (default: all cores)",
    )
    parser.add_argument("--steps", type=int, help="steps per trajectory (default 600)")
    add_max_dt_option(parser)
    parser.add_argument(
        "--rank",
        type=int,
        default=int(os.environ.get("RANK", 0)),
        help="this machine's share (default: $RANK or 0)",
    )
    parser.add_argument(
        "--world-size",
        type=int,
        default=int(os.environ.get("WORLD_SIZE", 1)),
        help="number of shares (default: $WORLD_SIZE or 1)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="retry cases listed in failures.jsonl"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--device", default="cpu", help="cuda: step batches of trajectories on the GPU"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.solver.ipcs import SolverConfig

    config = DatagenConfig(
        count=args.count,
        seed=args.seed,
        out_dir=args.output,
        workers=args.workers,
        steps=args.steps,
        rank=args.rank,
        world_size=args.world_size,
        retry_failed=args.retry_failed,
        solver=SolverConfig(max_dt=args.max_dt),
    )
    if args.device != "cpu":
        from engine.data.gpu_datagen import run_device_command

        return run_device_command(config, args.device, args.quiet)
    total = len(shard(config.count, config.rank, config.world_size))
    counts = {"written": 0, "skipped": 0, "failed": 0}
    start = time.perf_counter()
    with tqdm(total=total, unit="traj", disable=args.quiet) as bar:
        for result in generate(config):
            counts[result.status] += 1
            bar.update()
            bar.set_postfix(counts)
            if result.status == "failed":
                tqdm.write(f"{result.name} failed: {result.error}")
    wall = time.perf_counter() - start
    print(
        f"rank {config.rank}/{config.world_size}: {counts['written']} written, "
        f"{counts['skipped']} skipped, {counts['failed']} failed in {wall:.1f} s "
        f"→ {config.out_dir}"
    )
    return 0 if counts["failed"] == 0 else 1
