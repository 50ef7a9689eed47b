"""Forces on obstacles, as (drag, lift) per obstacle and as coefficients c = 2F / (ρ Ū² L).

The solver uses the volume (Babuška–Miller) form: the momentum residual tested with functions
that are 1 on an obstacle's surface dofs. It converges at the rate of the solution itself, much
faster than differentiating the velocity on the wall. Learned rollouts only have vertex fields,
so :class:`SurfaceForces` integrates pressure and viscous traction along the obstacle edges with
P1 gradients instead (less accurate, but needs nothing but u, v, p).

It lives outside ``engine.solver`` so a learned rollout does not import the solver (scikit-fem):
that import took ~250 ms, and made in the app's worker thread at the first Run it held the
interpreter lock and froze the window for as long.
"""

from __future__ import annotations

import math

import numpy as np

from engine.geometry.mesh import TunnelMesh, p1_gradient_weights
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


class SurfaceForces:
    """Forces from vertex fields: ∮ (−p n + ρν(∇u + ∇uᵀ) n) ds over each obstacle's edges.

    Everything but the fields is fixed by the mesh: each obstacle's edges, the triangles that own
    them, the P1 gradient weights of those triangles and the outward normals are computed once
    here, so a rollout pays only a few gathers per step (rebuilding them took ~1.2 ms a step at
    2k nodes, several % of a CPU model's step). ``p`` is in Pa; n points out of the body. The
    velocity gradient on an edge is the P1 gradient of the triangle that owns it.
    """

    def __init__(self, mesh: TunnelMesh, scenario: Scenario) -> None:
        self.scenario = scenario
        self.mu = scenario.fluid.density * scenario.fluid.viscosity
        owner = _edge_owner(mesh)
        self._obstacles = []
        for i in range(mesh.num_obstacles):
            edges = np.sort(mesh.obstacle_edges(i), axis=1)
            cells = mesh.cells[owner(edges)]
            a, b = mesh.points[edges[:, 0]], mesh.points[edges[:, 1]]
            tangent = b - a
            normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=-1)  # length = edge length
            third = mesh.points[cells].sum(axis=1) - a - b
            inward_to_fluid = np.einsum("ij,ij->i", normal, third - a) > 0
            normal[~inward_to_fluid] *= -1.0
            self._obstacles.append((edges, cells, p1_gradient_weights(mesh.points, cells), normal))

    def __call__(
        self, u: np.ndarray, v: np.ndarray, p: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(forces, coefficients), each [n_obstacles, 2]."""
        n_obs = len(self._obstacles)
        fx, fy = np.zeros(n_obs), np.zeros(n_obs)
        for i, (edges, cells, weights, normal) in enumerate(self._obstacles):
            grad_u = np.einsum("ckj,ck->cj", weights, u[cells])
            grad_v = np.einsum("ckj,ck->cj", weights, v[cells])
            p_mid = 0.5 * (p[edges[:, 0]] + p[edges[:, 1]])
            sxx = 2.0 * grad_u[:, 0]
            syy = 2.0 * grad_v[:, 1]
            sxy = grad_u[:, 1] + grad_v[:, 0]
            tx = -p_mid * normal[:, 0] + self.mu * (sxx * normal[:, 0] + sxy * normal[:, 1])
            ty = -p_mid * normal[:, 1] + self.mu * (sxy * normal[:, 0] + syy * normal[:, 1])
            fx[i], fy[i] = tx.sum(), ty.sum()
        forces = drag_lift(self.scenario, fx, fy).reshape(-1, 2)
        return forces, coefficients(self.scenario, forces)


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
