"""Dataset generation with the batched solver: CPU processes mesh, the GPU steps, writers save.

Three stages overlap so neither the GPU nor the cores wait for each other:

1. a process pool meshes each scenario and assembles its operators (gmsh + scikit-fem);
2. this process groups the prepared flows into batches (same sub-step count and length; see
   :func:`group_key`) sized to the GPU's memory, and advances each batch
   with :class:`~engine.solver.batched.BatchRun`;
3. a second, small process pool writes the finished trajectories (gzip is the costly part).

The output is the CPU generator's: one Trajectory HDF5 file per job plus the dataset manifest,
refreshed after every batch so training can read the files as they land.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.data.dataset import open_dataset
from engine.data.trajectory import Trajectory
from engine.errors import SlipstreamError
from engine.scenario import Scenario, TimeSpec
from engine.solver.batched import BatchRun, BatchSettings, PreparedFlow, prepare_flow
from engine.solver.commands import solver_attrs
from engine.solver.ipcs import SolverConfig

if TYPE_CHECKING:
    from engine.data.datagen import DatagenConfig

log = logging.getLogger(__name__)

SOLVER_NAME = "ipcs-p2p1-batched"


@dataclass(frozen=True)
class DatagenJob:
    """One trajectory to make: its file name inside the dataset folder and its scenario."""

    name: str
    scenario: Scenario
    attrs: dict = field(default_factory=dict)  # extra provenance for the file (seed, index)


@dataclass(frozen=True)
class GpuDatagenConfig:
    device: str = "cuda"
    workers: int | None = None  # meshing processes; None: all cores but the writers and this one
    writers: int | None = None  # file-writing processes; None: a third of the cores (gzip is slow)
    batch_size: int | None = None  # trajectories per batch; None: as many as fit memory_fraction
    max_batch_size: int = 256  # measured on an H200 at 2k nodes: 512 is no faster per trajectory
    # While flows are still being prepared, a group this big runs rather than leave the GPU
    # idle (H200, 2k nodes, CUDA graphs: 0.95 ms per trajectory-frame at 64, 0.70 at 256).
    min_batch_size: int = 64
    # Flows prepared ahead of the GPU, so every batch group (one per sub-step count) can fill
    # to max_batch_size (a look-ahead of ~280 over ~9 groups once left batches at 57-82).
    max_prepared: int = 1024
    host_memory_fraction: float = 0.25  # of physical memory, for the flows held ahead
    memory_fraction: float = 0.6  # share of the device's free memory a batch may plan to use
    cpu_batch_size: int = 4  # batch size when the device is the CPU and batch_size is None
    processes: bool = True  # False: mesh and write in threads of this process (small runs, tests)
    steps: int | None = None  # output steps per trajectory; None: each scenario's time.steps
    seed: int = 0  # the dataset's split seed
    solver: SolverConfig | None = None  # the solver's settings (default: its own)
    settings: BatchSettings = field(default_factory=BatchSettings)


@dataclass
class GpuDatagenReport:
    written: list[str] = field(default_factory=list)
    written_at: list[float] = field(default_factory=list)  # seconds from the start, sorted
    skipped: list[str] = field(default_factory=list)  # already on disk
    failed: dict[str, str] = field(default_factory=dict)  # name -> reason
    batches: list[int] = field(default_factory=list)  # size of each batch run
    num_nodes: list[int] = field(default_factory=list)
    wall_time_s: float = 0.0
    device_time_s: float = 0.0  # time spent stepping batches
    # Batches' work done, in whole trajectories: a cancelled batch counts its share of steps.
    trajectories_stepped: float = 0.0
    # Per trajectory stepped: what drives its cost (Re, sub-steps, diffusion number, size) and
    # the momentum iterations per sub-step it needed against what its batch paid.
    costs: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        nodes = self.num_nodes or [0]
        return {
            "written": len(self.written),
            "skipped": len(self.skipped),
            "failed": self.failed,
            "batches": self.batches,
            "nodes_mean": float(np.mean(nodes)),
            "nodes_min": int(min(nodes)),
            "nodes_max": int(max(nodes)),
            "wall_time_s": self.wall_time_s,
            "device_time_s": self.device_time_s,
            "trajectories_stepped": self.trajectories_stepped,
            "costs": self.costs,
        }


def prepare_job(
    job: DatagenJob, solver: SolverConfig | None = None
) -> tuple[DatagenJob, PreparedFlow | None, str]:
    """Worker: mesh and assemble one job; a user-facing failure is returned, not raised."""
    try:
        return job, prepare_flow(job.scenario, config=solver), ""
    except SlipstreamError as exc:
        return job, None, str(exc)


def _write(path: Path, trajectory: Trajectory) -> float:
    """Writer: save the file; return when it was done (wall clock, comparable across processes).

    The GPU process collects finished writes only between batches, so its own clock would
    date a file up to a whole batch late.
    """
    trajectory.save(path)
    return time.time()


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest 16 GB
        return 16 * 2**30


def _limit_threads() -> None:
    """Worker initializer: one BLAS/OpenMP thread per process, the pool is the parallelism."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    torch.set_num_threads(1)


def process_counts(workers: int | None, writers: int | None) -> tuple[int, int]:
    """(writers, meshing workers): by default a third of the cores write, the rest but one mesh.

    Writing a 600-frame trajectory (gzip) costs about as much CPU as meshing and assembling it.
    """
    cores = os.cpu_count() or 2
    writers = writers or max(1, cores // 3)
    return writers, workers or max(1, cores - writers - 1)


def _pool(size: int, processes: bool) -> Executor:
    """Worker processes (spawned: this process may hold a CUDA context), or threads."""
    if not processes:
        return ThreadPoolExecutor(size)
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(size, mp_context=ctx, initializer=_limit_threads)


def flow_bytes(flow: PreparedFlow, inverse_bytes: int) -> int:
    """Device bytes one trajectory needs in a batch: operators, Poisson inverse, vectors."""
    # Python ints: numpy int32 sizes overflow at 20k nodes (n1² · 8 bytes > 2³¹).
    n1, n2, nnz = int(flow.num_pressure_dofs), int(flow.num_velocity_dofs), int(flow.vv.nnz)
    return (
        inverse_bytes * n1 * n1
        + 8 * flow.convection_tensor.size
        + 8 * 8 * nnz  # mass, M/dt, νK, operator, lhs and scatter/column indices
        + 8 * 2 * n2 * 24  # Krylov and state vectors of both components
    )


def device_budget(config: GpuDatagenConfig, device: torch.device) -> float | None:
    """Bytes a batch may plan to use on a CUDA device (None elsewhere)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return config.memory_fraction * free


def batch_capacity(
    flows: Sequence[PreparedFlow], config: GpuDatagenConfig, budget: float | None
) -> int:
    """How many of ``flows`` (largest first) one batch may hold.

    Each flow is charged its own bytes with its Poisson inverse padded by the inverse's size
    bucket (at most 25 % wider, so 1.25² the area).
    """
    if config.batch_size is not None:
        return config.batch_size
    if budget is None:
        return config.cpu_batch_size
    largest_first = sorted(flows, key=lambda f: -f.num_pressure_dofs)
    used = np.cumsum([flow_bytes_padded(f, config) for f in largest_first])
    fits = int(np.searchsorted(used, budget, side="right"))
    if fits == len(used):  # all of them fit: the cap decides
        fits = config.max_batch_size
    return max(1, min(config.max_batch_size, fits))


def flow_bytes_padded(flow: PreparedFlow, config: GpuDatagenConfig) -> int:
    inverse = config.settings.inverse_dtype(flow.num_pressure_dofs).itemsize
    return flow_bytes(flow, math.ceil(inverse * 1.25**2))


def group_key(flow: PreparedFlow, steps: int) -> tuple[int, int]:
    """Flows that may share a batch: same sub-steps per frame and frames.

    Nothing else: with the two-sweep momentum preconditioner, flows across the envelope need
    3-10 momentum iterations per sub-step whatever their diffusion number (0.15-16.6, Re 10-293;
    measured on the CPU), so splitting by viscosity class, as was done for plain Jacobi, would
    only shrink the batches. Sizes may differ: sparse products cost only their nonzeros, and
    the Poisson inverse is bucketed by size inside the batch, so padding costs little while
    big batches are what use the GPU best (H200, 2k nodes: 0.75 ms per trajectory-frame at 64,
    0.49 at 256).
    """
    return flow.substeps, steps


def run_gpu_datagen(
    jobs: Sequence[DatagenJob],
    out_dir: str | Path,
    config: GpuDatagenConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> GpuDatagenReport:
    """Make every job's trajectory in ``out_dir`` (skipping finished files); see the module doc.

    ``progress(n)`` is called with the number of trajectories just written or failed. Setting
    ``cancel`` abandons the batch in flight; setting ``stop`` lets it finish and be written but
    starts no other (a time-boxed run, such as the throughput benchmark).
    """
    config = config or GpuDatagenConfig()
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SlipstreamError("--device cuda: no CUDA device is available to torch here")
    out = Path(out_dir)
    dataset = open_dataset(out, seed=config.seed, create=True)
    report = GpuDatagenReport()
    start, wall_start = time.perf_counter(), time.time()
    todo = []
    for job in jobs:
        if (out / job.name).exists():
            report.skipped.append(job.name)
        else:
            todo.append(job)
    writers, workers = process_counts(config.workers, config.writers)
    budget = device_budget(config, device)
    with _pool(workers, config.processes) as meshers, _pool(writers, config.processes) as savers:
        queue = iter(todo)
        preparing: set[Future] = set()
        writing: dict[Future, str] = {}
        groups: dict[tuple[int, int], list[tuple[DatagenJob, PreparedFlow]]] = {}
        # Prepared-but-not-run flows plus those being prepared: up to max_prepared, and only
        # while the held ones fit the host-memory share, so groups fill while a batch steps.
        look_ahead = max(config.max_prepared, 2 * workers)
        host_budget = config.host_memory_fraction * _physical_memory()

        def capacity(group: list[tuple[DatagenJob, PreparedFlow]]) -> int:
            return batch_capacity([f for _, f in group], config, budget)

        def refill() -> None:
            if any(e is not None and e.is_set() for e in (cancel, stop)):
                return
            held = [f.nbytes for g in groups.values() for _, f in g]
            room = look_ahead - len(held) - len(preparing)
            if held:  # flows being prepared will cost about what the held ones do
                room = min(room, int((host_budget - sum(held)) / np.mean(held)) - len(preparing))
            else:
                room = min(room, 2 * workers - len(preparing))
            for _ in range(room):
                job = next(queue, None)
                if job is None:
                    return
                preparing.add(meshers.submit(prepare_job, job, config.solver))

        def collect(done: set[Future]) -> None:
            for fut in done:
                preparing.discard(fut)
                job, flow, error = fut.result()
                if flow is None:
                    log.warning("%s: skipped, %s", job.name, error)
                    report.failed[job.name] = error
                    if progress:
                        progress(1)
                    continue
                key = group_key(flow, config.steps or job.scenario.time.steps)
                groups.setdefault(key, []).append((job, flow))

        def reap(block: bool) -> None:
            done, _ = wait(list(writing), timeout=None if block else 0)
            for fut in done:
                name = writing.pop(fut)
                try:
                    finished = fut.result()
                    report.written.append(name)
                    report.written_at.append(finished - wall_start)
                except (OSError, SlipstreamError, BrokenProcessPool) as exc:
                    # A broken pool: its processes were killed (a time limit's SIGTERM reaches
                    # the whole process group), so the file was not written.
                    log.warning("%s: could not be written, %s", name, exc)
                    report.failed[name] = f"write failed: {exc}"
                if progress:
                    progress(1)
            if done:
                dataset.refresh()

        refill()
        while preparing or any(groups.values()):
            if stop is not None and stop.is_set():
                break
            ready = {k: g for k, g in groups.items() if g}
            full = [k for k, g in ready.items() if len(g) >= capacity(g)]
            biggest = max((len(g) for g in ready.values()), default=0)
            # Run a full group; else the biggest one, once it is worth a batch or nothing
            # more is on its way (the look-ahead is spent or the jobs are).
            if not full and preparing and biggest < config.min_batch_size:
                done, _ = wait(preparing, timeout=1.0, return_when=FIRST_COMPLETED)
                collect(done)
                refill()
                reap(block=False)
                continue
            key = full[0] if full else max(ready, key=lambda k: len(ready[k]))
            group = sorted(groups[key], key=lambda jf: -jf[1].num_pressure_dofs)
            take = capacity(group)
            batch, groups[key] = group[:take], group[take:]
            refill()
            log.info(
                "%.1f s: batch %d of %d trajectories (%d more prepared, %d being prepared)",
                time.perf_counter() - start,
                len(report.batches) + 1,
                len(batch),
                sum(len(g) for g in groups.values()),
                len(preparing),
            )
            t0 = time.perf_counter()
            trajectories, costs, stepped = _run_batch(batch, key[1], device, config, cancel)
            report.trajectories_stepped += len(batch) * stepped / key[1]
            report.costs.extend(costs)
            report.device_time_s += time.perf_counter() - t0
            report.batches.append(len(batch))
            for job, result in trajectories:
                if isinstance(result, str):
                    log.warning("%s: skipped, %s", job.name, result)
                    report.failed[job.name] = result
                    if progress:
                        progress(1)
                    continue
                report.num_nodes.append(result.num_nodes)
                writing[savers.submit(_write, out / job.name, result)] = job.name
            reap(block=False)
            if cancel is not None and cancel.is_set():
                break
        for fut in preparing:  # left over only after a stop or cancel
            fut.cancel()
        while writing:
            reap(block=True)
    dataset.refresh()
    report.wall_time_s = time.perf_counter() - start
    report.written_at.sort()
    return report


def _log_batch_progress(run: BatchRun, frame: int, steps: int, elapsed: float) -> None:
    """Where a batch's time goes: a 600-frame batch can step for minutes before any file lands."""
    its, needed = run.stepper.iterations_per_substep()
    log.info(
        "batch of %d: frame %d/%d after %.1f s (%.0f ms per frame); Krylov iterations per "
        "sub-step: momentum %.1f (systems needed: median %.1f, 90th percentile %.1f, max %.1f), "
        "pressure %.1f, mass %.1f; solves redone by host LU: %d",
        len(run.flows),
        frame,
        steps,
        elapsed,
        1000.0 * elapsed / frame,
        its["momentum"],
        *np.percentile(needed, [50, 90, 100]),
        its["pressure"],
        its["mass"],
        run.stepper.direct_solves,
    )


def _run_batch(
    batch: list[tuple[DatagenJob, PreparedFlow]],
    steps: int,
    device: torch.device,
    config: GpuDatagenConfig,
    cancel: threading.Event | None,
) -> tuple[list[tuple[DatagenJob, Trajectory | str]], list[dict[str, float]], int]:
    """Step one batch to the end: each job's Trajectory (or why it failed), the
    per-trajectory costs for :attr:`GpuDatagenReport.costs`, and the steps taken (fewer than
    ``steps`` if cancelled)."""
    flows = [flow for _, flow in batch]
    started = time.perf_counter()
    run = BatchRun(flows, device, config.settings)
    setup = time.perf_counter() - started
    # Filled in place, in the file's precision: a batch of hundreds of trajectories must not
    # hold hundreds of thousands of fp64 Frame copies.
    trajectories = [
        Trajectory(
            mesh_pos=np.asarray(f.mesh.points, dtype=np.float64),
            cells=np.asarray(f.mesh.cells, dtype=np.int64),
            node_type=np.asarray(f.mesh.node_type, dtype=np.int64),
            velocity=np.zeros((steps + 1, f.mesh.num_nodes, 2), dtype=np.float32),
            pressure=np.zeros((steps + 1, f.mesh.num_nodes), dtype=np.float32),
            time=np.zeros(steps + 1),
            forces=np.zeros((steps + 1, len(f.obstacle_dofs), 2)),
            coefficients=np.zeros((steps + 1, len(f.obstacle_dofs), 2)),
            scenario=job.scenario.to_dict(),
        )
        for job, f in batch
    ]
    t0 = time.perf_counter()
    frames_done = 0
    sizes = [f.mesh.num_nodes for f in flows]
    log.info(
        "batch of %d (%d-%d vertices, %d sub-steps per frame): set up in %.1f s (Poisson "
        "inverses %.1f s, trajectory buffers %.1f s); stepping %d frames",
        len(flows),
        min(sizes),
        max(sizes),
        run.substeps,
        setup,
        run.stepper.inverse_seconds,
        t0 - started - setup,
        steps,
    )
    # fp32 fields: what the files store, and half the bytes to copy back every frame.
    for t, step_frames in enumerate(run.frames(steps, cancel, torch.float32)):
        if t in (1, 10) or (t > 0 and t % 100 == 0):
            _log_batch_progress(run, t, steps, time.perf_counter() - t0)
        for traj, frame in zip(trajectories, step_frames, strict=True):
            if frame is not None:
                traj.velocity[t, :, 0] = frame.u
                traj.velocity[t, :, 1] = frame.v
                traj.pressure[t] = frame.p
                traj.time[t] = frame.time
                traj.forces[t] = frame.forces
                traj.coefficients[t] = frame.coefficients
        frames_done = t + 1
    elapsed = time.perf_counter() - t0
    its, needed = run.stepper.iterations_per_substep()
    paid = its["momentum"]
    costs = [
        {
            "reynolds": round(job.scenario.reynolds, 2),
            "substeps": flow.substeps,
            "diffusion_number": round(flow.diffusion_number, 4),
            "nodes": flow.mesh.num_nodes,
            "momentum_iterations": round(float(n), 2),
            "batch_momentum_iterations": round(paid, 2),
        }
        for (job, flow), n in zip(batch, needed, strict=True)
    ]
    out: list[tuple[DatagenJob, Trajectory | str]] = []
    for b, ((job, flow), traj) in enumerate(zip(batch, trajectories, strict=True)):
        if b in run.failures:
            out.append((job, str(run.failures[b])))
        elif frames_done != steps + 1:
            out.append((job, "cancelled"))
        else:
            wall = elapsed / len(batch)
            traj.attrs = solver_attrs(job.scenario, wall, flow.mesh.num_nodes, config.solver)
            traj.attrs |= job.attrs | {
                "solver": SOLVER_NAME,
                "device": str(device),
                "batch_size": len(batch),
                "batch_wall_time_s": round(elapsed, 3),
                "momentum_iterations_per_substep": costs[b]["momentum_iterations"],
            }
            out.append((job, traj))
    del run
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out, costs, max(frames_done - 1, 0)


def run_datagen_on_device(
    config: DatagenConfig,
    device: str,
    *,
    progress: Callable[[int], None] | None = None,
    processes: bool = True,
) -> GpuDatagenReport:
    """``datagen --device cuda``: the CPU generator's dataset, made by the batched solver.

    Same trajectory names, scenarios, sharding, skipping and ``failures.jsonl`` as
    :func:`engine.data.datagen.generate`; ``config.workers`` counts every CPU process
    (meshing, writers and this one).
    """
    from engine.data.datagen import (
        FAILURES_NAME,
        recorded_failures,
        scenario_for,
        shard,
        trajectory_name,
    )

    out = Path(config.out_dir)
    skip = set() if config.retry_failed else recorded_failures(out)
    jobs, index_of = [], {}
    for index in shard(config.count, config.rank, config.world_size):
        if index in skip:
            continue
        scenario = scenario_for(config.seed, index)
        if config.steps is not None:
            scenario = scenario.replace(time=TimeSpec(scenario.time.dt, config.steps))
        name = trajectory_name(index)
        index_of[name] = index
        jobs.append(DatagenJob(name, scenario, {"seed": config.seed, "index": index}))
    writers = max(1, config.workers // 3)
    workers = max(1, config.workers - writers - 1)
    gpu_config = GpuDatagenConfig(
        device=device,
        workers=workers,
        writers=writers,
        seed=config.seed,
        processes=processes,
        solver=config.solver,
    )
    report = run_gpu_datagen(jobs, out, gpu_config, progress=progress)
    if report.failed:
        with (out / FAILURES_NAME).open("a") as f:
            for name, error in report.failed.items():
                entry = {
                    "index": index_of[name],
                    "name": name,
                    "error": error,
                    "seed": config.seed,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
                f.write(json.dumps(entry) + "\n")
    return report


def run_device_command(config: DatagenConfig, device: str, quiet: bool = False) -> int:
    """The ``datagen --device`` command: progress bar, summary line, exit status 1 on failures."""
    from tqdm import tqdm

    from engine.data.datagen import shard

    total = len(shard(config.count, config.rank, config.world_size))
    with tqdm(total=total, unit="traj", disable=quiet) as bar:
        report = run_datagen_on_device(config, device, progress=bar.update)
    for name, error in report.failed.items():
        print(f"{name} failed: {error}")
    print(
        f"rank {config.rank}/{config.world_size} on {device}: {len(report.written)} written, "
        f"{len(report.skipped)} skipped, {len(report.failed)} failed in "
        f"{report.wall_time_s:.1f} s ({len(report.batches)} batches) → {config.out_dir}"
    )
    return 0 if not report.failed else 1


def jobs_for(scenarios: Sequence[Scenario], prefix: str = "traj") -> list[DatagenJob]:
    """Jobs named ``<prefix>-00000.h5`` … in order (used by the benchmark)."""
    width = max(5, math.ceil(math.log10(max(len(scenarios), 1) + 1)))
    return [DatagenJob(f"{prefix}-{i:0{width}d}.h5", s) for i, s in enumerate(scenarios)]
