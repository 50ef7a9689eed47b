"""Steady Navier–Stokes by Newton's method on the coupled P2–P1 system (the DFG 2D-1 case).

Time stepping to a steady state would take thousands of steps; Newton from the Stokes solution
converges in a handful of sparse LU solves at the Reynolds numbers where a steady state exists.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from engine.errors import DivergenceError
from engine.forces import volume_forces
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.scenario import Scenario
from engine.solver.boundary_conditions import VelocityConditions
from engine.solver.spaces import FlowSpaces


def steady_state(
    scenario: Scenario,
    mesh: TunnelMesh | None = None,
    *,
    tolerance: float = 1e-10,
    max_iterations: int = 25,
) -> Frame:
    """The steady flow at full inflow (after the ramp) as a frame with step 0.

    Raises :class:`~engine.errors.DivergenceError` when Newton does not converge, which is what
    happens above the Reynolds number where the flow turns unsteady.
    """
    if mesh is None:
        from engine.geometry import build_tunnel_mesh

        mesh = build_tunnel_mesh(scenario)
    s = FlowSpaces.build(mesh)
    bc = VelocityConditions(scenario, s)
    n2, n1 = s.num_velocity_dofs, s.num_pressure_dofs
    nu = scenario.fluid.viscosity
    viscous = nu * s.stiffness
    B = [s.pv.matrix(d) for d in s.divergence]
    fixed = np.concatenate([bc.dofs[0], bc.dofs[1] + n2])
    free_rows = np.ones(2 * n2 + n1)
    free_rows[fixed] = 0.0
    keep = sp.diags(free_rows)
    pin = sp.diags(1.0 - free_rows)
    values = np.concatenate(bc.values(float("inf")))

    x = np.zeros(2 * n2 + n1)
    x[fixed] = values
    tensor = s.convection_tensor.reshape(-1, 6, 6, 6, 2).transpose(0, 1, 3, 2, 4)
    edofs = s.vbasis.element_dofs
    newton = False  # the first pass is a Picard (Oseen) step from rest: the Stokes solution
    for iteration in range(max_iterations):
        u = (x[:n2], x[n2 : 2 * n2])
        p = x[2 * n2 :]
        a = s.vv.matrix(viscous + s.convection(u[0], u[1]))
        residual = np.concatenate(
            [a @ u[0] - B[0].T @ p, a @ u[1] - B[1].T @ p, -(B[0] @ u[0] + B[1] @ u[1])]
        )
        blocks = [[a, None, -B[0].T], [None, a, -B[1].T], [-B[0], -B[1], None]]
        if newton:  # derivative of (w·∇)u_c with respect to w_d: ∫ φ_a φ_b ∂_d u_c
            for c in (0, 1):
                local_u = u[c][edofs].T  # [E, 6]
                for d in (0, 1):
                    local = np.einsum("eabk,ek->eab", tensor[..., d], local_u)
                    extra = s.vv.matrix(s.vv.data(local))
                    blocks[c][d] = extra if blocks[c][d] is None else blocks[c][d] + extra
        jacobian = (keep @ sp.bmat(blocks, format="csr") + pin).tocsc()
        rhs = -residual
        rhs[fixed] = values - x[fixed]
        delta = spla.splu(jacobian).solve(rhs)
        x += delta
        if not np.all(np.isfinite(x)):
            raise DivergenceError(iteration, "Newton's method produced NaN/inf")
        if newton and np.linalg.norm(delta) <= tolerance * max(np.linalg.norm(x), 1.0):
            break
        newton = True
    else:
        raise DivergenceError(
            max_iterations, "Newton's method did not converge: this flow may have no steady state"
        )
    u = (x[:n2], x[n2 : 2 * n2])
    p = x[2 * n2 :]
    a = s.vv.matrix(viscous + s.convection(u[0], u[1]))
    momentum = [a @ u[0] - B[0].T @ p, a @ u[1] - B[1].T @ p]
    forces, coeffs = volume_forces(scenario, s.obstacle_dofs(), momentum)
    rho = scenario.fluid.density
    return Frame(
        step=0,
        time=0.0,
        u=u[0][s.vertex_dofs].copy(),
        v=u[1][s.vertex_dofs].copy(),
        p=rho * p[np.asarray(s.pbasis.nodal_dofs[0])],
        forces=forces,
        coefficients=coeffs,
    )
