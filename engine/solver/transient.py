"""``solve``: the reference solver as a cancellable generator of frames at the scenario's dt."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from engine.forces import volume_forces
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.scenario import Scenario
from engine.solver.boundary_conditions import InflowScale
from engine.solver.ipcs import IpcsStepper, SolverConfig, peak_inflow_speed, substeps_per_frame
from engine.solver.spaces import FlowSpaces


def solve(
    scenario: Scenario,
    mesh: TunnelMesh | None = None,
    *,
    steps: int | None = None,
    cancel: threading.Event | None = None,
    config: SolverConfig | None = None,
    inflow_scale: InflowScale | None = None,
) -> Iterator[Frame]:
    """Yield frame 0 (rest, t = 0), then one frame per ``scenario.time.dt`` for ``steps`` steps.

    ``mesh`` defaults to meshing the scenario. ``inflow_scale(t)`` multiplies the inflow on top
    of its start-up ramp (the DFG 2D-3 case's sin(πt/8)); coefficients still use the nominal
    mean speed. Setting ``cancel`` stops the run after the current step. Raises
    :class:`~engine.errors.DivergenceError` if the flow blows up.
    """
    config = config or SolverConfig()
    if mesh is None:
        from engine.geometry import build_tunnel_mesh

        mesh = build_tunnel_mesh(scenario)
    steps = scenario.time.steps if steps is None else steps
    substeps = substeps_per_frame(scenario, config)
    dt = scenario.time.dt / substeps
    spaces = FlowSpaces.build(mesh)
    stepper = IpcsStepper(spaces, scenario, dt, inflow_scale=inflow_scale)
    obstacle_dofs = spaces.obstacle_dofs()
    pressure_vertices = np.asarray(spaces.pbasis.nodal_dofs[0])
    rho = scenario.fluid.density
    limit = config.blowup_factor * peak_inflow_speed(scenario)

    def frame(step: int, forces: np.ndarray, coefficients: np.ndarray) -> Frame:
        return Frame(
            step=step,
            time=step * scenario.time.dt,
            u=stepper.u[0][spaces.vertex_dofs].copy(),
            v=stepper.u[1][spaces.vertex_dofs].copy(),
            p=rho * stepper.p[pressure_vertices],
            forces=forces,
            coefficients=coefficients,
        )

    n_obs = len(obstacle_dofs)
    yield frame(0, np.zeros((n_obs, 2)), np.zeros((n_obs, 2)))
    for step in range(1, steps + 1):
        if cancel is not None and cancel.is_set():
            return
        for _ in range(substeps):
            stepper.step()
        stepper.check(step, limit)
        forces, coeffs = volume_forces(scenario, obstacle_dofs, stepper.last_residual)
        yield frame(step, forces, coeffs)
