"""Compare a predicted trajectory with a reference one: field errors and force statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.evaluation.metrics import (
    field_rmse,
    force_errors,
    force_stats,
    relative_rmse,
    startup_force_error,
    wake_stats,
)
from engine.geometry.mesh import TunnelMesh
from engine.nodetypes import NodeType
from engine.rollout.reference import trajectory_mesh, trajectory_scenario
from engine.scenario import Scenario

if TYPE_CHECKING:
    from engine.models.simulator import Simulator


def computed_nodes(node_type: np.ndarray) -> np.ndarray:
    """Nodes whose values the solver computes (fluid and outlet); the rest are imposed."""
    return (node_type == NodeType.NORMAL) | (node_type == NodeType.OUTFLOW)


def one_step_predictions(
    simulator: Simulator,
    mesh: TunnelMesh,
    scenario: Scenario,
    reference: Trajectory,
    device: str | torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """The next state predicted from each reference state: velocity [T-1,N,2], pressure [T-1,N]."""
    device = torch.device(device)
    was_training = simulator.training
    simulator.eval()
    velocities, pressures = [], []
    try:
        with torch.inference_mode():
            static = simulator.prepare(mesh, scenario, device)
            for t in range(reference.num_steps - 1):
                velocity = torch.as_tensor(reference.velocity[t], device=device)
                pressure = torch.as_tensor(reference.pressure[t], device=device)
                velocity, pressure = simulator.step(
                    static, velocity, pressure, float(reference.time[t])
                )
                velocities.append(velocity.float().cpu().numpy())
                pressures.append(pressure.float().cpu().numpy())
    finally:
        simulator.train(was_training)
    return np.stack(velocities), np.stack(pressures)


def compare(
    reference: Trajectory,
    prediction: Trajectory,
    *,
    simulator: Simulator | None = None,
    device: str | torch.device = "cpu",
    settle_fraction: float = 0.5,
) -> dict[str, Any]:
    """All the accuracy numbers of ``prediction`` against ``reference`` as a JSON-able dict.

    Fields are compared over the steps both trajectories have (a diverged rollout is shorter),
    on the computed nodes only. One-step errors need the model; without it they are omitted.
    Force statistics and the phase-blind wake measures use the tail after ``settle_fraction``
    of the common steps.
    """
    if reference.num_nodes != prediction.num_nodes or not np.array_equal(
        reference.node_type, prediction.node_type
    ):
        raise DataFormatError("the two trajectories are not on the same mesh")
    steps = min(reference.num_steps, prediction.num_steps)
    if steps < 2:
        raise DataFormatError("need at least two common steps to compare")
    scenario = trajectory_scenario(reference, "reference")
    speed, density = scenario.inflow.mean_speed, scenario.fluid.density
    mask = computed_nodes(reference.node_type)
    rollout = field_rmse(
        reference.velocity[1:steps],
        prediction.velocity[1:steps],
        reference.pressure[1:steps],
        prediction.pressure[1:steps],
        mask,
    )
    result: dict[str, Any] = {
        "steps": steps - 1,
        "nodes": reference.num_nodes,
        "mean_inflow_speed": speed,
        "reference_length": scenario.reference_length,
        "reynolds": scenario.reynolds,
        "rollout_rmse": rollout,
        "rollout_rmse_relative": relative_rmse(rollout, speed, density),
        "wake": wake_stats(
            reference.velocity[1:steps], prediction.velocity[1:steps], speed, mask, settle_fraction
        ),
    }
    if simulator is not None:
        mesh = trajectory_mesh(reference, scenario)
        velocity, pressure = one_step_predictions(simulator, mesh, scenario, reference, device)
        one_step = field_rmse(
            reference.velocity[1:], velocity, reference.pressure[1:], pressure, mask
        )
        result["one_step_rmse"] = one_step
        result["one_step_rmse_relative"] = relative_rmse(one_step, speed, density)
    dt = float(np.median(np.diff(reference.time[:steps])))
    forces = []
    for i in range(reference.coefficients.shape[1]):
        ref = force_stats(
            reference.coefficients[:steps, i], dt, scenario.reference_length, speed, settle_fraction
        )
        pred = force_stats(
            prediction.coefficients[:steps, i],
            dt,
            scenario.reference_length,
            speed,
            settle_fraction,
        )
        forces.append(
            {
                "obstacle": i,
                "reference": ref.to_dict(),
                "prediction": pred.to_dict(),
                "error": force_errors(pred, ref),
                "startup": startup_force_error(
                    reference.coefficients[:steps, i],
                    prediction.coefficients[:steps, i],
                    reference.time[:steps] - reference.time[0],
                    scenario.inflow.ramp_time,
                ),
            }
        )
    result["forces"] = forces
    return result
