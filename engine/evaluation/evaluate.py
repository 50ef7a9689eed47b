"""Evaluate a model on a held-out test set: per-case and mean errors, the issue-7 table.

Each case is rolled out from its reference's first frame on the reference's own mesh, so errors
measure the model and not a re-meshing. The mean row pools field errors over every case and
force/Strouhal errors over the cases whose reference sheds vortices (elsewhere they are noise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from engine.data.dataset import open_dataset
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError, DivergenceError
from engine.evaluation.compare import compare
from engine.frame import Frame
from engine.rollout.reference import trajectory_mesh, trajectory_scenario
from engine.rollout.rollout import rollout

if TYPE_CHECKING:
    from engine.models.simulator import Simulator


def head(trajectory: Trajectory, count: int) -> Trajectory:
    """The first ``count`` frames of a trajectory."""
    return replace(
        trajectory,
        velocity=trajectory.velocity[:count],
        pressure=trajectory.pressure[:count],
        time=trajectory.time[:count],
        forces=trajectory.forces[:count],
        coefficients=trajectory.coefficients[:count],
    )


def evaluate_case(
    simulator: Simulator,
    reference: Trajectory,
    name: str,
    *,
    steps: int,
    long_steps: int,
    device: torch.device,
    settle_fraction: float = 0.5,
) -> dict[str, Any]:
    """Compare one case over ``steps`` and check it stays finite for ``long_steps`` (0: skip)."""
    scenario = trajectory_scenario(reference, name)
    mesh = trajectory_mesh(reference, scenario)
    steps = min(steps, reference.num_steps - 1)
    frames: list[Frame] = []
    diverged_at = None
    try:
        run = rollout(
            simulator,
            scenario,
            max(steps, long_steps),
            device,
            mesh=mesh,
            initial=reference.frame(0),
        )
        for frame in run:
            if frame.step <= steps:
                frames.append(frame)
    except DivergenceError as exc:
        diverged_at = exc.step
    case: dict[str, Any] = {
        "case": name,
        "nodes": reference.num_nodes,
        "steps": steps,
        "diverged_at": diverged_at,
    }
    if long_steps:
        case["long_steps"] = long_steps
    if len(frames) < 2:
        return case
    prediction = Trajectory.from_frames(mesh, frames, reference.scenario)
    case.update(
        compare(
            head(reference, steps + 1),
            prediction,
            simulator=simulator,
            device=device,
            settle_fraction=settle_fraction,
        )
    )
    return case


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def summarise(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean errors: fields over all compared cases, forces over the shedding ones."""
    compared = [c for c in cases if "rollout_rmse_relative" in c]
    shedding = [f for c in compared for f in c["forces"] if f["reference"]["shedding"]]
    startups = [f for c in compared for f in c["forces"] if f.get("startup")]
    return {
        "cases": len(cases),
        "diverged": sum(c["diverged_at"] is not None for c in cases),
        "velocity_rmse_rel": _mean([c["rollout_rmse_relative"]["velocity"] for c in compared]),
        "pressure_rmse_rel": _mean([c["rollout_rmse_relative"]["p"] for c in compared]),
        # Only a model has one-step errors (``bench floor`` compares two solver runs).
        "one_step_velocity_rmse_rel": _mean(
            [c.get("one_step_rmse_relative", {}).get("velocity") for c in compared]
        ),
        "mean_flow_velocity_rmse_rel": _mean(
            [c["wake"]["mean_flow_velocity_rmse_relative"] for c in compared]
        ),
        "fluctuation_ratio": _mean([c["wake"]["fluctuation_ratio"] for c in compared]),
        "shedding_obstacles": len(shedding),
        # Of those, the ones whose learned wake sheds too: a dead wake has no Strouhal error to
        # average, so without this count a model whose wakes died would read as accurate.
        "shedding_in_rollout": sum(bool(f["prediction"]["shedding"]) for f in shedding),
        "cd_mean_error": _mean([f["error"]["cd_mean"] for f in shedding]),
        "cl_amplitude_error": _mean([f["error"]["cl_amplitude"] for f in shedding]),
        "strouhal_error": _mean([f["error"]["strouhal"] for f in shedding]),
        # Over every obstacle, shedding or not: the start-up is the same for both.
        "startup_cd_error": _mean([f["startup"]["cd_max_abs_error"] for f in startups]),
        "startup_cl_error": _mean([f["startup"]["cl_max_abs_error"] for f in startups]),
    }


def evaluate(
    simulator: Simulator,
    testset: Path,
    *,
    steps: int = 600,
    long_steps: int = 0,
    device: torch.device | str = "cpu",
    settle_fraction: float = 0.5,
) -> Iterator[dict[str, Any]]:
    """Yield one result per test case, then the summary (``{"mean": ...}``) last."""
    files = open_dataset(testset).files()
    if not files:
        raise DataFormatError(f"{testset}: no trajectories to evaluate on")
    cases = []
    for path in files:
        case = evaluate_case(
            simulator,
            Trajectory.load(path),
            path.stem,
            steps=steps,
            long_steps=long_steps,
            device=torch.device(device),
            settle_fraction=settle_fraction,
        )
        cases.append(case)
        yield case
    yield {"mean": summarise(cases)}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _shed(mean: dict[str, Any]) -> str:
    if not mean["shedding_obstacles"]:
        return ""
    return f"; {mean['shedding_in_rollout']} of {mean['shedding_obstacles']} wakes shed"


def startup_line(mean: dict[str, Any]) -> str | None:
    """The start-up force errors under the table (they are not the issue's, so not a column);
    None for results saved before this measure existed."""
    if "startup_cd_error" not in mean:
        return None
    cd, cl = mean["startup_cd_error"], mean["startup_cl_error"]
    if cd is None or cl is None:
        return "start-up forces: no ramped start to compare"
    return (
        f"start-up forces (the inflow ramp and as long again), largest error per obstacle, "
        f"mean: c_D {cd:.2f}, c_L {cl:.2f}"
    )


def results_text(results: dict[str, Any]) -> str:
    """What ``evaluate`` and ``bench floor`` print: the table, then the start-up line if any."""
    lines = [markdown_table(results["cases"], results["mean"])]
    if (line := startup_line(results["mean"])) is not None:
        lines.append(line)
    return "\n".join(lines)


def markdown_table(cases: list[dict[str, Any]], mean: dict[str, Any]) -> str:
    """The issue-7 table: errors in % of Ū (velocity), ρŪ² (pressure) or of the solver's value."""
    head_row = (
        "| case | nodes | steps | velocity RMSE %Ū | pressure RMSE %ρŪ² | one-step %Ū "
        "| mean-flow RMSE %Ū | fluctuation ratio "
        "| c_D mean err % | c_L amp. err % | St err % | diverged at |"
    )
    lines = [head_row, "|" + "---|" * 12]
    for c in cases:
        rel = c.get("rollout_rmse_relative", {})
        one = c.get("one_step_rmse_relative", {})
        shedding = [f for f in c.get("forces", []) if f["reference"]["shedding"]]
        err = shedding[0]["error"] if shedding else {}
        wake = c.get("wake", {})
        lines.append(
            f"| {c['case']} | {c['nodes']} | {c['steps']} | {_pct(rel.get('velocity'))} "
            f"| {_pct(rel.get('p'))} | {_pct(one.get('velocity'))} "
            f"| {_pct(wake.get('mean_flow_velocity_rmse_relative'))} "
            f"| {_ratio(wake.get('fluctuation_ratio'))} | {_pct(err.get('cd_mean'))} "
            f"| {_pct(err.get('cl_amplitude'))} | {_pct(err.get('strouhal'))} "
            f"| {c['diverged_at'] if c['diverged_at'] is not None else '—'} |"
        )
    lines.append(
        f"| **mean** ({mean['cases']} cases) | | | {_pct(mean['velocity_rmse_rel'])} "
        f"| {_pct(mean['pressure_rmse_rel'])} | {_pct(mean['one_step_velocity_rmse_rel'])} "
        f"| {_pct(mean['mean_flow_velocity_rmse_rel'])} | {_ratio(mean['fluctuation_ratio'])} "
        f"| {_pct(mean['cd_mean_error'])} | {_pct(mean['cl_amplitude_error'])} "
        f"| {_pct(mean['strouhal_error'])} | {mean['diverged']} diverged{_shed(mean)} |"
    )
    return "\n".join(lines)
