"""The CPU half of the batched solver: mesh a scenario and build its constant operators once.

A :class:`PreparedFlow` holds only numpy arrays and plain dataclasses, so a worker process can
build it (gmsh + scikit-fem) and pickle it to the GPU process. The matrices, boundary dofs,
sub-step count and force functional come from the CPU reference solver's own modules, so the
batched solver discretises exactly the same equations.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from engine.geometry.mesh import TunnelMesh
from engine.scenario import Scenario
from engine.solver.boundary_conditions import VelocityConditions
from engine.solver.ipcs import SolverConfig, peak_inflow_speed, substeps_per_frame
from engine.solver.spaces import ElementPattern, FlowSpaces


@dataclass
class PreparedFlow:
    """Everything the GPU stepper needs for one trajectory, as host arrays."""

    scenario: Scenario
    mesh: TunnelMesh
    substeps: int  # internal steps per output frame
    dt: float  # internal step
    blowup_limit: float  # |u| above this counts as divergence
    vv: ElementPattern  # P2 x P2 (mass, stiffness, convection share it)
    mass: np.ndarray
    stiffness: np.ndarray
    convection_tensor: np.ndarray  # [E, 36, 12], see FlowSpaces
    element_dofs: np.ndarray  # [E, 6] P2 dofs of each triangle
    divergence: tuple[sp.csr_matrix, sp.csr_matrix]  # P1 x P2, per direction
    divergence_t: tuple[sp.csr_matrix, sp.csr_matrix]  # its transposes, P2 x P1
    gradient: tuple[sp.csr_matrix, sp.csr_matrix]  # P2 x P1, per direction
    pressure_laplacian: sp.csr_matrix  # P1 x P1, outflow rows and columns not yet removed
    outflow_pressure_dofs: np.ndarray
    velocity_fixed: np.ndarray  # [n2, 2] bool: Dirichlet dof of u (column 0) / v (column 1)
    velocity_full_inflow: np.ndarray  # [n2, 2] prescribed values once the ramp is over
    vertex_dofs: np.ndarray  # [N] P2 dof of each vertex
    pressure_vertex_dofs: np.ndarray  # [N] P1 dof of each vertex
    obstacle_dofs: list[np.ndarray]

    @cached_property
    def diffusion_number(self) -> float:
        """Median over velocity dofs of ν·dt·K_ii / M_ii: how viscous-dominated momentum is.

        With plain Jacobi, viscous-dominated systems needed ~5× the momentum iterations, so
        the data generator batched them apart; with two damped Jacobi sweeps they do not, and
        it is only reported (the generator's per-trajectory costs, ``bench stepper``).
        """
        diagonal = self.vv.diagonal_positions()
        viscosity = self.scenario.fluid.viscosity
        return float(
            np.median(viscosity * self.dt * self.stiffness[diagonal] / self.mass[diagonal])
        )

    @cached_property
    def nbytes(self) -> int:
        """Host memory held by the arrays (the convection tensor dominates: ~14 MB at 2k
        vertices), so the data generator can bound how many it prepares ahead; cached, since
        its scheduler asks about every held flow about once a second."""
        return _nbytes([getattr(self, f.name) for f in fields(self)])

    @property
    def num_velocity_dofs(self) -> int:
        return self.vv.shape[0]

    @property
    def num_pressure_dofs(self) -> int:
        return self.pressure_laplacian.shape[0]

    def condensed_laplacian(self) -> sp.csr_matrix:
        """The pressure Poisson matrix with outflow rows and columns replaced by identity (SPD)."""
        keep = np.ones(self.num_pressure_dofs)
        keep[self.outflow_pressure_dofs] = 0.0
        free = sp.diags(keep)
        return (free @ self.pressure_laplacian @ free + sp.diags(1.0 - keep)).tocsr()


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if sp.issparse(value):
        return sum(_nbytes(getattr(value, a, None)) for a in ("data", "indices", "indptr"))
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return _nbytes([getattr(value, f.name) for f in fields(value)])
    return 0


def prepare_flow(
    scenario: Scenario, mesh: TunnelMesh | None = None, config: SolverConfig | None = None
) -> PreparedFlow:
    """Mesh (unless given) and assemble one scenario exactly as the CPU ``solve`` does."""
    config = config or SolverConfig()
    if mesh is None:
        from engine.geometry import build_tunnel_mesh

        mesh = build_tunnel_mesh(scenario)
    substeps = substeps_per_frame(scenario, config)
    spaces = FlowSpaces.build(mesh)
    bc = VelocityConditions(scenario, spaces)
    n2 = spaces.num_velocity_dofs
    fixed = np.zeros((n2, 2), dtype=bool)
    full = np.zeros((n2, 2))
    # At the end of the start-up ramp the inflow is at full strength.
    for c, values in enumerate(bc.values(scenario.inflow.ramp_time)):
        fixed[bc.dofs[c], c] = True
        full[bc.dofs[c], c] = values
    divergence = tuple(spaces.pv.matrix(d) for d in spaces.divergence)
    return PreparedFlow(
        scenario=scenario,
        mesh=mesh,
        substeps=substeps,
        dt=scenario.time.dt / substeps,
        blowup_limit=config.blowup_factor * peak_inflow_speed(scenario),
        vv=spaces.vv,
        mass=spaces.mass,
        stiffness=spaces.stiffness,
        convection_tensor=spaces.convection_tensor,
        element_dofs=np.ascontiguousarray(spaces.vbasis.element_dofs.T),
        divergence=divergence,
        divergence_t=tuple(d.T.tocsr() for d in divergence),
        gradient=tuple(spaces.vp.matrix(d) for d in spaces.gradient),
        pressure_laplacian=spaces.pp.matrix(spaces.pressure_laplacian),
        outflow_pressure_dofs=spaces.boundary_pressure_dofs["outflow"],
        velocity_fixed=fixed,
        velocity_full_inflow=full,
        vertex_dofs=np.asarray(spaces.vertex_dofs),
        pressure_vertex_dofs=np.asarray(spaces.pbasis.nodal_dofs[0]),
        obstacle_dofs=spaces.obstacle_dofs(),
    )
