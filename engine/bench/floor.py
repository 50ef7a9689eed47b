"""``bench floor``: the reference solver against itself at a finer time step, case by case.

Why: ``evaluate`` scores a learned rollout against one solver run, and on a shedding case its
all-rollout RMSE also charges the street's phase, which the start-up instability sets and every
small difference shifts. This re-solves each test case on the reference's own mesh with the
solver's internal step divided by ``--factor`` (an equally valid solution of the same flow) and
scores it with the same measures and table as ``evaluate``. A learned model's error below these
rows is agreement with that one run's numerical error rather than with the flow, so a target
under them asks a model to be closer to the reference than the reference is to itself.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from engine.data.dataset import open_dataset
from engine.errors import ConfigError, DataFormatError, DivergenceError


def refined_case(item: tuple[Path, float, int]) -> dict[str, Any]:
    """Re-solve one reference trajectory with its internal step ÷ ``factor``; its comparison."""
    from engine.data.trajectory import Trajectory
    from engine.evaluation.compare import compare
    from engine.evaluation.evaluate import head
    from engine.rollout.reference import trajectory_mesh, trajectory_scenario
    from engine.solver import SolverConfig, solve
    from engine.solver.ipcs import substeps_per_frame

    path, factor, steps = item
    reference = Trajectory.load(path)
    scenario = trajectory_scenario(reference, path.stem)
    mesh = trajectory_mesh(reference, scenario)
    steps = min(steps, reference.num_steps - 1)
    # The step the reference was made with: recorded by every solver run, else the default rule.
    recorded = reference.attrs.get("internal_dt")
    if recorded:
        internal_dt = float(recorded)
    else:
        internal_dt = scenario.time.dt / substeps_per_frame(scenario, SolverConfig())
    config = SolverConfig(max_dt=internal_dt / factor)
    case: dict[str, Any] = {
        "case": path.stem,
        "nodes": reference.num_nodes,
        "steps": steps,
        "diverged_at": None,
        "internal_dt": internal_dt,
        "refined_internal_dt": scenario.time.dt / substeps_per_frame(scenario, config),
    }
    try:
        frames = list(solve(scenario, mesh, steps=steps, config=config))
    except DivergenceError as exc:
        return case | {"diverged_at": exc.step}
    refined = Trajectory.from_frames(mesh, frames, reference.scenario)
    return case | compare(head(reference, steps + 1), refined)


def solver_floor(
    testset: Path, factor: float = 2.0, steps: int = 600, workers: int = 1
) -> dict[str, Any]:
    """Every case of ``testset`` re-solved at internal step ÷ ``factor``: per-case results and
    their mean, in ``evaluate``'s layout."""
    from engine.evaluation.evaluate import summarise
    from engine.solver.threads import solver_map

    if not factor > 1.0:
        raise ConfigError(f"bench floor: --factor must be above 1, got {factor}")
    files = open_dataset(testset).files()
    if not files:
        raise DataFormatError(f"{testset}: no trajectories to re-solve")
    cases = solver_map(refined_case, [(path, factor, steps) for path in files], workers)
    return {
        "model": f"reference solver, internal step / {factor:g}",
        "testset": str(testset),
        "steps": steps,
        "factor": factor,
        "cases": cases,
        "mean": summarise(cases),
    }


def register(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser(
        "floor",
        help="the reference solver against itself at a finer time step (evaluate's table)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--testset", type=Path, required=True, help="test-set folder (`testset -o`)")
    p.add_argument(
        "--factor", type=float, default=2.0, help="divide the internal time step by this (2)"
    )
    p.add_argument("--steps", type=int, default=600, help="steps compared per case (600)")
    p.add_argument("--workers", type=int, default=1, help="solver processes, one case each")
    p.add_argument("--json", type=Path, help="also write the full results here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.evaluation.evaluate import results_text

    start = time.perf_counter()
    results = solver_floor(args.testset, args.factor, args.steps, args.workers)
    print(f"{results['model']} ({time.perf_counter() - start:.0f} s)")
    print(results_text(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0
