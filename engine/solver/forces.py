"""Forces on obstacles, as (drag, lift) per obstacle and as coefficients c = 2F / (ρ Ū² L).

The solver uses the volume (Babuška–Miller) form: the momentum residual tested with functions
that are 1 on an obstacle's surface dofs. It converges at the rate of the solution itself, much
faster than differentiating the velocity on the wall. Learned rollouts only have vertex fields,
so :func:`surface_forces` integrates pressure and viscous traction along the obstacle edges with
P1 gradients instead (less accurate, but needs nothing but u, v, p).
"""

from __future__ import annotations

import math

import numpy as np

from engine.geometry.mesh import TunnelMesh
from engine.scenario import Scenario


def drag_lift(scenario: Scenario, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Rotate (Fx, Fy) [n] into the inflow frame: [n, 2] = (along, across) the inflow."""
    a = math.radians(scenario.inflow.angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.stack([c * fx + s * fy, -s * fx + c * fy], axis=-1)


def coefficients(scenario: Scenario, forces: np.ndarray) -> np.ndarray:
    """c = 2F / (ρ Ū² L) with the nominal mean inflow speed and the scenario's reference length."""
    q = 0.5 * scenario.fluid.density * scenario.inflow.mean_speed**2 * scenario.reference_length
    return forces / q


def volume_forces(
    scenario: Scenario, obstacle_dofs: list[np.ndarray], residual: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Forces from the kinematic momentum residual (x and y rows) at each obstacle's dofs."""
    rho = scenario.fluid.density
    fx = np.array([-rho * residual[0][d].sum() for d in obstacle_dofs])
    fy = np.array([-rho * residual[1][d].sum() for d in obstacle_dofs])
    forces = drag_lift(scenario, fx, fy).reshape(-1, 2)
    return forces, coefficients(scenario, forces)


def surface_forces(
    mesh: TunnelMesh, scenario: Scenario, u: np.ndarray, v: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Forces from vertex fields: ∮ (−p n + ρν(∇u + ∇uᵀ) n) ds over each obstacle's edges.

    ``p`` is in Pa; n points out of the body. The velocity gradient on an edge is the P1 gradient
    of the triangle that owns it. Returns (forces, coefficients), each [n_obstacles, 2].
    """
    rho, nu = scenario.fluid.density, scenario.fluid.viscosity
    owner = _edge_owner(mesh)
    n_obs = mesh.num_obstacles
    fx, fy = np.zeros(n_obs), np.zeros(n_obs)
    for i in range(n_obs):
        edges = np.sort(mesh.obstacle_edges(i), axis=1)
        cells = mesh.cells[owner(edges)]
        grad_u, grad_v = _p1_gradients(mesh.points, cells, u), _p1_gradients(mesh.points, cells, v)
        a, b = mesh.points[edges[:, 0]], mesh.points[edges[:, 1]]
        tangent = b - a
        normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=-1)  # length = edge length
        third = mesh.points[cells].sum(axis=1) - a - b
        inward_to_fluid = np.einsum("ij,ij->i", normal, third - a) > 0
        normal[~inward_to_fluid] *= -1.0
        p_mid = 0.5 * (p[edges[:, 0]] + p[edges[:, 1]])
        sxx = 2.0 * grad_u[:, 0]
        syy = 2.0 * grad_v[:, 1]
        sxy = grad_u[:, 1] + grad_v[:, 0]
        mu = rho * nu
        tx = -p_mid * normal[:, 0] + mu * (sxx * normal[:, 0] + sxy * normal[:, 1])
        ty = -p_mid * normal[:, 1] + mu * (sxy * normal[:, 0] + syy * normal[:, 1])
        fx[i], fy[i] = tx.sum(), ty.sum()
    forces = drag_lift(scenario, fx, fy).reshape(-1, 2)
    return forces, coefficients(scenario, forces)


def _edge_owner(mesh: TunnelMesh):
    """Map boundary edges [E, 2] (sorted pairs) to the index of the triangle containing them."""
    n = mesh.num_nodes
    local = mesh.cells[:, [[0, 1], [1, 2], [2, 0]]]  # [C, 3, 2]
    local = np.sort(local, axis=-1).reshape(-1, 2).astype(np.int64)
    keys = local[:, 0] * n + local[:, 1]
    order = np.argsort(keys)
    sorted_keys = keys[order]

    def owner(edges: np.ndarray) -> np.ndarray:
        k = edges[:, 0].astype(np.int64) * n + edges[:, 1]
        pos = np.minimum(np.searchsorted(sorted_keys, k), len(keys) - 1)
        return order[pos] // 3

    return owner


def _p1_gradients(points: np.ndarray, cells: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Gradient [C, 2] of the linear interpolant of vertex values ``f`` on each triangle."""
    x = points[cells]  # [C, 3, 2]
    d1, d2 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
    df1, df2 = f[cells[:, 1]] - f[cells[:, 0]], f[cells[:, 2]] - f[cells[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    gx = (df1 * d2[:, 1] - df2 * d1[:, 1]) / det
    gy = (df2 * d1[:, 0] - df1 * d2[:, 0]) / det
    return np.stack([gx, gy], axis=-1)
