"""The held-out test set: named showcase cases plus envelope scenarios no training job draws.

Training data comes from ``datagen`` seeds 0, 1, 100 003, …; the test set's envelope scenarios
use their own seed, and the showcase cases (the DFG cylinder, two airfoils, tandem cylinders, a
tilted square, three obstacles) are the built-in presets in ``assets/scenarios``. On the CPU the
reference solver makes the trajectories; with ``--device cuda`` the batched solver does (it
reproduces the reference to ~1e-6, see docs/gpu-datagen.md), so a GPU job can build its own
test set instead of carrying hundreds of megabytes of HDF5 along.

``python -m engine testset -o DIR [--envelope N] [--seed S] [--steps K] [--device cuda]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.data.datagen import scenario_for
from engine.scenario import Scenario, TimeSpec

if TYPE_CHECKING:
    from engine.solver.ipcs import SolverConfig

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "assets" / "scenarios"
SHOWCASE: tuple[str, ...] = (
    "dfg-2d-2",
    "naca0012-5deg",
    "naca2412-10deg",
    "tandem-cylinders",
    "square-45deg",
    "three-obstacles",
)
TESTSET_SEED = 424_242  # far from every campaign's datagen seeds (multiples of 100 003)


def testset_scenarios(
    envelope: int = 6, seed: int = TESTSET_SEED, steps: int | None = None, showcase: bool = True
) -> dict[str, Scenario]:
    """File name → scenario of every test case, showcase cases first."""
    names = SHOWCASE if showcase else ()
    cases = {f"{name}.h5": Scenario.load(SCENARIOS_DIR / f"{name}.json") for name in names}
    for index in range(envelope):
        cases[f"envelope-{index:03d}.h5"] = scenario_for(seed, index)
    if steps is not None:
        cases = {k: s.replace(time=TimeSpec(s.time.dt, steps)) for k, s in cases.items()}
    return cases


def _solve_one(item: tuple[str, Scenario, Path, SolverConfig | None]) -> str:
    """Reference-solve one case into ``out/name``; returns an error line or ''."""
    from engine.data.datagen import write_reference_trajectory
    from engine.errors import SlipstreamError
    from engine.geometry import build_tunnel_mesh

    name, scenario, out, solver = item
    start = time.perf_counter()
    try:
        mesh = build_tunnel_mesh(scenario)
        write_reference_trajectory(scenario, mesh, out / name, start, solver=solver)
    except SlipstreamError as exc:
        return f"{name}: {exc}"
    return ""


def build_testset(
    out: Path,
    cases: dict[str, Scenario],
    device: str = "cpu",
    workers: int = 1,
    solver: SolverConfig | None = None,
) -> list[str]:
    """Write every missing case into ``out``; returns the failures, one line each."""
    out.mkdir(parents=True, exist_ok=True)
    todo = {name: s for name, s in cases.items() if not (out / name).exists()}
    if device != "cpu":
        from engine.data.gpu_datagen import DatagenJob, GpuDatagenConfig, run_gpu_datagen

        jobs = [DatagenJob(name, s, {"testset": True}) for name, s in todo.items()]
        report = run_gpu_datagen(jobs, out, GpuDatagenConfig(device=device, solver=solver))
        return [f"{name}: {error}" for name, error in report.failed.items()]
    from engine.solver.threads import solver_map

    items = [(name, s, out, solver) for name, s in todo.items()]
    errors = solver_map(_solve_one, items, workers)
    return [e for e in errors if e]


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.solver.commands import add_max_dt_option

    p = subparsers.add_parser(
        "testset",
        help="build the held-out test set (showcase cases + unseen envelope scenarios)",
        description="Solve the showcase presets and N envelope scenarios of a seed no training "
        "job uses into one folder, for `evaluate --testset`. Existing files are kept.",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="test-set folder")
    p.add_argument("--envelope", type=int, default=6, help="envelope scenarios (6)")
    p.add_argument(
        "--cases",
        choices=("all", "showcase", "envelope"),
        default="all",
        help="which part to build (separate folders let evaluate treat them differently)",
    )
    p.add_argument("--seed", type=int, default=TESTSET_SEED, help="their seed")
    p.add_argument("--steps", type=int, help="steps per case (default: each scenario's, 600)")
    p.add_argument("--device", default="cpu", help="cpu: reference solver; cuda: batched solver")
    p.add_argument("--workers", type=int, default=1, help="CPU solver processes")
    add_max_dt_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.solver.ipcs import SolverConfig

    solver = SolverConfig(max_dt=args.max_dt)  # a bad cap is one error, before any case
    envelope = 0 if args.cases == "showcase" else args.envelope
    cases = testset_scenarios(envelope, args.seed, args.steps, showcase=args.cases != "envelope")
    start = time.perf_counter()
    failures = build_testset(args.output, cases, args.device, args.workers, solver)
    for line in failures:
        print(f"failed: {line}")
    print(
        f"{len(cases) - len(failures)}/{len(cases)} cases in {args.output} "
        f"({time.perf_counter() - start:.1f} s on {args.device})"
    )
    return 1 if failures else 0
