"""Learned rollout: a simulator stepped forward autoregressively, one Frame per step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.boundary import inflow_velocity
from engine.errors import DivergenceError
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.nodetypes import NodeType
from engine.scenario import Scenario

if TYPE_CHECKING:
    from engine.models.simulator import Simulator

# A velocity this many times the mean inflow speed is a blow-up, not a flow: potential flow
# round a bluff body peaks near 2×, real wakes stay well below 3×.
BLOWUP_FACTOR = 20.0


def initial_frame(mesh: TunnelMesh, scenario: Scenario) -> Frame:
    """Fluid at rest with the inflow imposed at t = 0 (zero while the start-up ramp begins)."""
    u = np.zeros(mesh.num_nodes)
    v = np.zeros(mesh.num_nodes)
    inlet = mesh.nodes_of(NodeType.INFLOW)
    velocity = inflow_velocity(scenario, mesh.points[inlet], 0.0)
    u[inlet], v[inlet] = velocity[:, 0], velocity[:, 1]
    n = len(scenario.obstacles)
    return Frame(0, 0.0, u, v, np.zeros(mesh.num_nodes), np.zeros((n, 2)), np.zeros((n, 2)))


def check_state(step: int, velocity: torch.Tensor, pressure: torch.Tensor, limit: float) -> None:
    """Raise :class:`DivergenceError` on NaN/inf or a speed above ``limit``."""
    if not (torch.isfinite(velocity).all() and torch.isfinite(pressure).all()):
        raise DivergenceError(step, "the model produced NaN or infinite values")
    top = float(velocity.norm(dim=-1).max())
    if top > limit:
        raise DivergenceError(
            step, f"speed {top:.3g} exceeds {BLOWUP_FACTOR:g}× the mean inflow speed"
        )


def rollout(
    simulator: Simulator,
    scenario: Scenario,
    steps: int,
    device: str | torch.device,
    *,
    mesh: TunnelMesh | None = None,
    initial: Frame | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Iterator[Frame]:
    """Yield frame 0 (``initial``, by default fluid at rest), then ``steps`` predicted frames.

    The mesh is built from the scenario unless given. Each frame carries the forces on every
    obstacle, computed from the predicted fields as the reference solver computes them, so plots
    of learned and solved runs mean the same thing. ``cancel`` is polled before each step (pass
    ``threading.Event().is_set`` from a worker thread); the generator then simply ends. Raises
    :class:`DivergenceError` naming the step where the state stopped being a flow.
    """
    from engine.forces import SurfaceForces

    if mesh is None:
        from engine.geometry import build_tunnel_mesh

        mesh = build_tunnel_mesh(scenario)
    frame = initial if initial is not None else initial_frame(mesh, scenario)
    yield frame

    device = torch.device(device)
    limit = BLOWUP_FACTOR * scenario.inflow.mean_speed
    was_training = simulator.training
    simulator.eval()
    try:
        with torch.inference_mode():
            static = simulator.prepare(mesh, scenario, device)
            surface_forces = SurfaceForces(mesh, scenario)
            dt = float(static.dt)
            velocity = torch.as_tensor(
                np.stack([frame.u, frame.v], -1), dtype=torch.float32, device=device
            )
            pressure = torch.as_tensor(frame.p, dtype=torch.float32, device=device)
            for _ in range(steps):
                if cancel is not None and cancel():
                    return
                velocity, pressure = simulator.step(static, velocity, pressure, frame.time)
                check_state(frame.step + 1, velocity, pressure, limit)
                vel = velocity.double().cpu().numpy()
                p = pressure.double().cpu().numpy()
                forces, coefficients = surface_forces(vel[:, 0], vel[:, 1], p)
                frame = Frame(
                    frame.step + 1, frame.time + dt, vel[:, 0], vel[:, 1], p, forces, coefficients
                )
                yield frame
    finally:
        simulator.train(was_training)
