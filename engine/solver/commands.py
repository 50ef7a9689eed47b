"""``python -m engine solve``: run the reference solver on one scenario and write a trajectory."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from engine.scenario import Scenario

if TYPE_CHECKING:
    from engine.solver.ipcs import SolverConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve",
        help="simulate a scenario with the reference solver and write an HDF5 trajectory",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("scenario", type=Path, help="scenario JSON file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="trajectory .h5 to write")
    parser.add_argument("--steps", type=int, help="number of steps (default: the scenario's)")
    add_max_dt_option(parser)
    parser.add_argument("--vtk", type=Path, metavar="DIR", help="also write a PVD + VTU series")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def add_max_dt_option(parser: argparse.ArgumentParser) -> None:
    """``--max-dt``, the same for every command that runs the solver (solve, datagen, testset)."""
    parser.add_argument(
        "--max-dt",
        type=float,
        metavar="SECONDS",
        help="cap the solver's internal step (default: CFL 1.5 at the obstacle), e.g. to check "
        "that a result does not depend on the time step",
    )


def solver_attrs(
    scenario: Scenario, wall_time_s: float, num_nodes: int, config: SolverConfig | None = None
) -> dict:
    """Provenance stored with every solver trajectory."""
    from engine import __version__
    from engine.solver.ipcs import SolverConfig, substeps_per_frame

    config = config or SolverConfig()
    return {
        "source": "slipstream-reference-solver",
        "method": "P2-P1 Taylor-Hood, IPCS, BDF2, semi-implicit convection (scikit-fem)",
        "engine_version": __version__,
        "internal_dt": scenario.time.dt / substeps_per_frame(scenario, config),
        "num_nodes": num_nodes,
        "wall_time_s": round(wall_time_s, 3),
        "host": platform.node(),
    }


def run(args: argparse.Namespace) -> int:
    from engine.data.trajectory import Trajectory
    from engine.errors import ScenarioError
    from engine.geometry import build_tunnel_mesh
    from engine.solver import solve
    from engine.solver.ipcs import SolverConfig
    from engine.solver.threads import single_threaded_blas

    scenario = Scenario.load(args.scenario)
    if args.steps is not None and args.steps < 1:
        raise ScenarioError("--steps", f"must be at least 1, got {args.steps}")
    config = SolverConfig(max_dt=args.max_dt)
    steps = scenario.time.steps if args.steps is None else args.steps
    start = time.perf_counter()
    mesh = build_tunnel_mesh(scenario)
    frames = []
    with single_threaded_blas(), tqdm(total=steps + 1, unit="frame", disable=args.quiet) as bar:
        for frame in solve(scenario, mesh, steps=steps, config=config):
            frames.append(frame)
            bar.update()
    attrs = solver_attrs(scenario, time.perf_counter() - start, mesh.num_nodes, config)
    traj = Trajectory.from_frames(mesh, frames, scenario.to_dict(), attrs)
    traj.save(args.output)
    print(
        f"wrote {args.output}: {traj.num_steps} frames, {traj.num_nodes} vertices, "
        f"{attrs['wall_time_s']:.1f} s"
    )
    if args.vtk is not None:
        from engine.io.vtk import export_series

        pvd = export_series(traj, args.vtk)
        print(f"wrote {pvd}")
    return 0
