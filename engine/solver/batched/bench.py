"""Benchmarks of the batched solver: DFG with it, agreement with the CPU solver, datagen speed.

``bench datagen`` and ``bench agreement`` are registered into the ``bench`` group;
``bench dfg --device cuda`` runs :func:`run_dfg_case` instead of the CPU solver.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from engine.bench.dfg import (
    DEFAULT_DURATION,
    INTERVALS,
    PROBES,
    STATISTICS_WINDOW,
    DfgResult,
    dfg_2d3_speed,
    dfg_scenario,
    pressure_probe,
    strouhal,
)
from engine.errors import SlipstreamError
from engine.geometry import build_tunnel_mesh
from engine.geometry.mesh import TunnelMesh
from engine.scenario import MeshSpec, Scenario, TimeSpec
from engine.solver.batched.prepare import prepare_flow
from engine.solver.batched.run import BatchRun
from engine.solver.batched.stepper import BatchSettings
from engine.solver.ipcs import SolverConfig

STEADY_FRAME_DT = 0.1  # 2D-1 is reached by time stepping: large frames, the CFL sets sub-steps
STEADY_DURATION = 8.0


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


# ---- bench dfg --device ... -------------------------------------------------------------------
def run_dfg_case(
    case: str,
    resolution: str,
    device: str,
    *,
    duration: float | None = None,
    max_dt: float | None = None,
) -> DfgResult:
    """One DFG case with the batched solver; 2D-1's steady state by time stepping to rest."""
    start = time.perf_counter()
    scenario = dfg_scenario(case, resolution)
    mesh = build_tunnel_mesh(scenario)
    probe = pressure_probe(mesh, PROBES)
    diameter, speed = scenario.reference_length, scenario.inflow.mean_speed
    if case == "2d-1":
        frame_dt = STEADY_FRAME_DT
        duration = STEADY_DURATION if duration is None else duration
    else:
        frame_dt = scenario.time.dt
        duration = DEFAULT_DURATION[case] if duration is None else duration
    steps = round(duration / frame_dt)
    scenario = scenario.replace(time=TimeSpec(dt=frame_dt, steps=steps))
    flow = prepare_flow(scenario, mesh, SolverConfig(max_dt=max_dt))
    scales = [dfg_2d3_speed if case == "2d-3" else None]
    t, cd, cl, dp = [], [], [], []
    for frames in BatchRun([flow], device, inflow_scales=scales).frames(steps):
        frame = frames[0]
        if frame is None:
            raise SlipstreamError(f"DFG {case}: the batched solver diverged")
        front, back = probe(frame.p)
        t.append(frame.time)
        cd.append(frame.coefficients[0, 0])
        cl.append(frame.coefficients[0, 1])
        dp.append(front - back)
    t_, cd_, cl_, dp_ = map(np.asarray, (t, cd, cl, dp))
    if case == "2d-1":
        last_second = t_ >= t_[-1] - 1.0
        values = {
            "c_D": float(cd_[-1]),
            "c_L": float(cl_[-1]),
            "delta_p": float(dp_[-1]),
            "c_D_drift_last_s": float(np.ptp(cd_[last_second])),
        }
    elif case == "2d-2":
        window = t_ >= t_[-1] - STATISTICS_WINDOW
        values = {
            "c_D_max": float(cd_[window].max()),
            "c_L_max": float(cl_[window].max()),
            "St": strouhal(t_[window], cl_[window], diameter, speed),
            "c_D_mean": float(cd_[window].mean()),
            "delta_p_mean": float(dp_[window].mean()),
        }
    else:
        values = {
            "c_D_max": float(cd_.max()),
            "c_L_max": float(cl_.max()),
            "t_c_D_max": float(t_[cd_.argmax()]),
            "t_c_L_max": float(t_[cl_.argmax()]),
            "delta_p_end": float(dp_[-1]),
        }
    return DfgResult(
        case,
        f"{resolution} (batched, {device})",
        mesh.num_nodes,
        time.perf_counter() - start,
        values,
        INTERVALS[case],
        flow.dt,
    )


# ---- scenarios for the throughput benchmark ----------------------------------------------------
def envelope_scenarios(count: int, seed: int, dt: float, steps: int) -> list[Scenario]:
    """The first ``count`` scenarios of the dataset ``datagen --seed`` makes, on this time grid."""
    from engine.data.datagen import scenario_for

    time_spec = TimeSpec(dt=dt, steps=steps)
    return [scenario_for(seed, i).replace(time=time_spec) for i in range(count)]


def _scaled(scenario: Scenario, factor: float) -> Scenario:
    """Element sizes × ``factor``; obstacle surfaces are only ever refined (coarser ones may be
    too coarse for thin bodies or narrow gaps, which the mesher rejects)."""
    m = scenario.mesh
    cap = min(scenario.tunnel.length, scenario.tunnel.height) / 4
    size = min(m.size * factor, cap)
    return scenario.replace(
        mesh=MeshSpec(
            size=size,
            obstacle_size=min(m.obstacle_size * min(factor, 1.0), size),
            wake_size=None if m.wake_size is None else min(m.wake_size * factor, size),
            file=m.file,
        )
    )


def _node_count(scenario: Scenario) -> int | None:
    try:
        return build_tunnel_mesh(scenario).num_nodes
    except SlipstreamError:
        return None


def scale_to_nodes(scenarios: list[Scenario], nodes: int, workers: int) -> list[Scenario]:
    """Scale every mesh spec by one factor so the scenarios average about ``nodes`` vertices.

    Calibrated on a sample of up to 16 (two rounds: node count is only roughly ∝ 1/h²), so the
    envelope's spread of sizes across scenarios is kept.
    """
    sample = scenarios[:16]
    factor = 1.0
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(sample)), mp_context=ctx) as pool:
        for _ in range(2):
            counts = pool.map(_node_count, [_scaled(s, factor) for s in sample])
            meshed = [n for n in counts if n is not None]
            if not meshed:
                raise SlipstreamError("none of the calibration scenarios could be meshed")
            factor *= math.sqrt(float(np.mean(meshed)) / nodes)
    return [_scaled(s, factor) for s in scenarios]


# ---- bench datagen ---------------------------------------------------------------------------
def run_datagen_bench(args: argparse.Namespace) -> dict:
    from engine.data.gpu_datagen import (
        GpuDatagenConfig,
        jobs_for,
        process_counts,
        run_gpu_datagen,
    )

    device = torch.device(args.device)
    began = time.perf_counter()
    target = min(args.target or args.count, args.count)
    writers, workers = process_counts(args.workers, args.writers)
    scenarios = envelope_scenarios(args.count, args.seed, args.dt, args.steps)
    scenarios = scale_to_nodes(scenarios, args.nodes, workers)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="slipstream-bench-"))
    config = GpuDatagenConfig(
        device=args.device, workers=workers, writers=writers, batch_size=args.batch_size
    )
    stop = threading.Event()
    timer = threading.Timer(args.max_seconds, stop.set) if args.max_seconds else None
    done = 0
    start = time.perf_counter()
    calibration = start - began

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if done % 50 < n or done == len(scenarios):
            elapsed = time.perf_counter() - start
            print(f"{elapsed:7.1f} s  {done}/{len(scenarios)} done", file=sys.stderr, flush=True)
            if args.json:  # so a run cut off by a time limit still leaves its rate so far
                partial = {
                    "partial": True,
                    "done": done,
                    "elapsed_s": elapsed,
                    "rate_so_far_per_10_min": 600.0 * done / elapsed,
                    "device": device_name(device),
                    "target_nodes": args.nodes,
                }
                args.json.write_text(json.dumps(partial, indent=2) + "\n")

    # A time limit (`timeout` sends SIGTERM) abandons the batch in flight, so the files
    # already made are still counted and the report (batches, costs) still written.
    cancel = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    if timer is not None:
        timer.start()
    try:
        report = run_gpu_datagen(
            jobs_for(scenarios), out, config, progress=progress, stop=stop, cancel=cancel
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if timer is not None:
            timer.cancel()
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    written = len(report.written)
    return {
        "benchmark": "datagen",
        "device": device_name(device),
        "cpu_cores": os.cpu_count(),
        "workers": workers,
        "writers": writers,
        "target_nodes": args.nodes,
        "frames": args.steps,
        "dt": args.dt,
        "requested": args.count,
        "stopped_early": stop.is_set() or cancel.is_set(),
        "cut_off_by_time_limit": cancel.is_set(),
        "trajectories_per_10_min": 600.0 * written / report.wall_time_s,
        # The figure: from the first meshing until the target-th file is on disk
        # (None if it was not reached), and the benchmark's own mesh-size calibration before.
        "target": target,
        "seconds_to_target": report.written_at[target - 1] if written >= target else None,
        "calibration_s": calibration,
        # What the GPU sustains once the pipeline is full (no start-up or drain).
        "stepping_only_per_10_min": 600.0
        * report.trajectories_stepped
        / max(report.device_time_s, 1e-9),
        **report.to_dict(),
    }


# ---- bench agreement --------------------------------------------------------------------------
def _cpu_velocities(scenario: Scenario, mesh: TunnelMesh) -> tuple[np.ndarray, float]:
    from engine.solver import solve

    start = time.perf_counter()
    frames = list(solve(scenario, mesh))
    velocity = np.stack([np.stack([f.u, f.v], axis=-1) for f in frames])
    return velocity, time.perf_counter() - start


def run_agreement_bench(args: argparse.Namespace) -> dict:
    """Random envelope scenarios with both solvers: relative velocity RMSE over every frame."""
    device = torch.device(args.device)
    workers = max(1, min(args.count, (os.cpu_count() or 2) - 1))
    scenarios = envelope_scenarios(args.count, args.seed, args.dt, args.steps)
    scenarios = scale_to_nodes(scenarios, args.nodes, workers)
    meshes = [build_tunnel_mesh(s) for s in scenarios]
    # Batches this small run without stragglers unless asked: --stragglers checks that path
    # (on in data generation from batch 128) against the CPU solver too.
    settings = BatchSettings(straggler_min_batch=1) if args.stragglers else None
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        cpu_runs = pool.map(_cpu_velocities, scenarios, meshes)
        start = time.perf_counter()
        flows = [prepare_flow(s, m) for s, m in zip(scenarios, meshes, strict=True)]
        groups: dict[int, list[int]] = {}
        for i, f in enumerate(flows):
            groups.setdefault(f.substeps, []).append(i)
        batched: dict[int, np.ndarray | None] = {}
        for members in groups.values():
            run = BatchRun([flows[i] for i in members], device, settings)
            series: list[list] = [[] for _ in members]
            for frames in run.frames(args.steps):
                for k, frame in enumerate(frames):
                    if frame is not None:
                        series[k].append(np.stack([frame.u, frame.v], axis=-1))
            for k, i in enumerate(members):
                batched[i] = None if k in run.failures else np.stack(series[k])
        batched_time = time.perf_counter() - start
        results = []
        for i, (cpu, cpu_time) in enumerate(cpu_runs):
            gpu = batched[i]
            entry = {
                "nodes": int(cpu.shape[1]),
                "reynolds": scenarios[i].reynolds,
                "substeps": flows[i].substeps,
                "cpu_time_s": cpu_time,
            }
            if gpu is None or gpu.shape != cpu.shape:
                entry["relative_velocity_rmse"] = None
            else:
                err = np.sqrt(np.mean((gpu - cpu) ** 2)) / np.sqrt(np.mean(cpu**2))
                entry["relative_velocity_rmse"] = float(err)
            results.append(entry)
    worst = [r["relative_velocity_rmse"] for r in results]
    return {
        "benchmark": "agreement",
        "device": device_name(device),
        "frames": args.steps,
        "dt": args.dt,
        "batched_time_s": batched_time,
        "stragglers": args.stragglers,
        "worst_relative_velocity_rmse": None if None in worst else max(worst),
        "passed": None not in worst and max(worst) < 0.01,
        "trajectories": results,
    }


# ---- bench stepper ----------------------------------------------------------------------------
def run_stepper_bench(args: argparse.Namespace) -> dict:
    """Per-frame cost of the batched stepper alone at several batch sizes (no meshing, no files).

    The same prepared flows (one sub-step count) are repeated to fill each batch, so the rows
    differ only in batch size: this separates launch-bound (cost flat in B) from
    bandwidth-bound (cost ∝ B) and says which batch sizes the data generator should aim for.
    """
    from engine.data.gpu_datagen import group_key, jobs_for, prepare_job

    if not 0 <= args.warmup < args.steps:
        raise SlipstreamError(f"--warmup {args.warmup} must be at least 0 and below --steps")
    device = torch.device(args.device)
    workers = max(1, min(args.count, (os.cpu_count() or 2) - 1))
    scenarios = scale_to_nodes(
        envelope_scenarios(args.count, args.seed, args.dt, args.steps), args.nodes, workers
    )
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        prepared = pool.map(prepare_job, jobs_for(scenarios))
        flows = [flow for _, flow, _ in prepared if flow is not None]
    groups: dict[tuple[int, int], list] = {}
    for f in flows:  # one batch group of the data generator, the most common
        groups.setdefault(group_key(f, args.steps), []).append(f)
    key = max(groups, key=lambda k: len(groups[k]))
    flows = groups[key]
    settings = BatchSettings(
        momentum_rtol=args.momentum_rtol,
        cuda_graphs=not args.eager,
        krylov_dtype=torch.float64 if args.fp64 else torch.float32,
        momentum_jacobi_sweeps=args.jacobi_sweeps,
    )
    rows = []
    for size in args.batch_sizes:
        batch = [flows[i % len(flows)] for i in range(size)]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        run = BatchRun(batch, device, settings)
        for t, _ in enumerate(run.frames(args.steps)):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if t == args.warmup:
                run.stepper.iterations = dict.fromkeys(run.stepper.iterations, 0)
                start, first = time.perf_counter(), run.stepper.steps_taken
        timed = time.perf_counter() - start
        if args.profile:
            _profile(run, device)
        frames = args.steps - args.warmup
        substeps = run.stepper.steps_taken - first
        per_frame = timed / frames
        row = {
            "batch": size,
            "ms_per_frame": 1000 * per_frame,
            "ms_per_trajectory_frame": 1000 * per_frame / size,
            "trajectories_per_10_min_at_600_frames": 600.0 / (600 * per_frame) * size,
            "iterations_per_substep": {
                k: v / max(substeps, 1) for k, v in run.stepper.iterations.items()
            },
            "failures": len(run.failures),
        }
        if device.type == "cuda":
            row["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
        del run
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "benchmark": "stepper",
        "device": device_name(device),
        "substeps": flows[0].substeps,
        "diffusion_numbers": [round(f.diffusion_number, 3) for f in flows],
        "distinct_meshes": len(flows),
        "nodes": [f.mesh.num_nodes for f in flows],
        "frames_timed": args.steps - args.warmup,
        "momentum_rtol": args.momentum_rtol,
        "cuda_graphs": settings.cuda_graphs,
        "krylov_dtype": str(settings.krylov_dtype),
        "momentum_jacobi_sweeps": settings.momentum_jacobi_sweeps,
        "rows": rows,
    }


def _profile(run: BatchRun, device: torch.device, frames: int = 2) -> None:
    """The costliest kernels of a few more frames, to stderr (where the stepper's time goes)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in run.frames(frames):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=30), file=sys.stderr, flush=True)


# ---- command line ------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, count: int, steps: int) -> None:
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default, help=f"torch device (default {default})")
    parser.add_argument("--count", type=int, default=count, help="number of scenarios")
    parser.add_argument("--nodes", type=int, default=2000, help="target mesh vertices")
    parser.add_argument("--steps", type=int, default=steps, help="frames per trajectory")
    parser.add_argument("--dt", type=float, default=0.01, help="time between frames [s]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")


def register(bench: argparse._SubParsersAction) -> None:
    parser = bench.add_parser(
        "datagen",
        help="trajectories per 10 minutes with the batched solver, meshing to files on disk",
        description="Generate trajectories from the training envelope with the batched GPU "
        "solver and report the end-to-end rate (meshing, stepping, writing).",
    )
    _common(parser, count=1000, steps=600)
    parser.add_argument("--workers", type=int, help="meshing processes (default: the rest)")
    parser.add_argument("--writers", type=int, help="file-writing processes (default: cores/3)")
    parser.add_argument("--batch-size", type=int, help="trajectories per batch (default: fit)")
    parser.add_argument("--max-seconds", type=float, help="start no batch after this long")
    parser.add_argument(
        "--target", type=int, help="report when this many files were on disk (default: count)"
    )
    parser.add_argument("-o", "--out", help="keep the dataset here (default: a deleted temp dir)")
    parser.set_defaults(run=lambda a: _print(run_datagen_bench(a), a.json))

    parser = bench.add_parser(
        "agreement",
        help="batched vs CPU solver on random scenarios: relative velocity RMSE",
        description=run_agreement_bench.__doc__,
    )
    _common(parser, count=4, steps=600)
    parser.add_argument(
        "--stragglers",
        action="store_true",
        help="finish the last unconverged systems in their own small batch, as batches of "
        "128 or more do",
    )
    parser.set_defaults(run=lambda a: _print(run_agreement_bench(a), a.json))

    parser = bench.add_parser(
        "stepper",
        help="per-frame cost of the batched stepper at several batch sizes",
        description=run_stepper_bench.__doc__,
    )
    _common(parser, count=16, steps=40)
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 16, 64, 256],
        help="comma-separated batch sizes (default 1,16,64,256)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="frames before timing starts")
    defaults = BatchSettings()
    parser.add_argument("--momentum-rtol", type=float, default=defaults.momentum_rtol)
    parser.add_argument(
        "--eager", action="store_true", help="launch every kernel from Python, no CUDA graphs"
    )
    parser.add_argument(
        "--jacobi-sweeps",
        type=int,
        default=defaults.momentum_jacobi_sweeps,
        help="momentum preconditioner sweeps (1: plain Jacobi)",
    )
    parser.add_argument(
        "--fp64", action="store_true", help="Krylov iterations in fp64, not fp32 + refinement"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print the costliest kernels of each batch size"
    )
    parser.set_defaults(run=lambda a: _print(run_stepper_bench(a), a.json))


def _print(result: dict, path: Path | None) -> int:
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        path.write_text(text + "\n")
    return 0 if result.get("passed", True) else 1


def main(argv: list[str] | None = None) -> int:
    """These benchmarks and ``dfg`` without the rest of the CLI (GPU hosts lack the GUI stack)."""
    from engine.bench import dfg

    parser = argparse.ArgumentParser(prog="python -m engine.solver.batched.bench")
    bench = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    dfg.register(bench)
    register(bench)
    args = parser.parse_args(argv)
    # Batch-level progress (engine.data.gpu_datagen logs at INFO) goes to stderr with the time.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except SlipstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
