"""Rebuild the mesh of a stored trajectory, so a learned run can replay it on the same nodes.

A trajectory file stores vertices, triangles and node types but not the named boundary edges that
force integration needs. They follow from the triangulation: boundary edges are those of exactly
one triangle; obstacle edges join two OBSTACLE nodes, and each connected ring of them belongs to
the scenario obstacle whose centre is nearest; the rest sit on the inlet, the outlet or the walls.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.geometry.mesh import TunnelMesh
from engine.nodetypes import NodeType
from engine.scenario import Scenario


def trajectory_scenario(trajectory: Trajectory, name: str = "trajectory") -> Scenario:
    """The scenario a trajectory was made from (its inflow speed and lengths set every scale)."""
    if not trajectory.scenario:
        raise DataFormatError(f"{name}: has no scenario, so its inflow and lengths are unknown")
    return Scenario.from_dict(trajectory.scenario)


def _boundary_edges(cells: np.ndarray) -> np.ndarray:
    edges = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]])
    edges.sort(axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return unique[counts == 1]


def trajectory_mesh(trajectory: Trajectory, scenario: Scenario) -> TunnelMesh:
    """The trajectory's mesh with ``inflow``, ``outflow``, ``walls`` and ``obstacle-<i>`` edges."""
    points, node_type = trajectory.mesh_pos, trajectory.node_type
    edges = _boundary_edges(trajectory.cells)
    on_obstacle = (node_type[edges] == NodeType.OBSTACLE).all(axis=1)
    named: dict[str, np.ndarray] = {}

    ring_edges = edges[on_obstacle]
    if len(scenario.obstacles):
        n = len(points)
        graph = coo_matrix((np.ones(len(ring_edges)), (ring_edges[:, 0], ring_edges[:, 1])), (n, n))
        _, label = connected_components(graph, directed=False)
        rings = np.unique(label[ring_edges[:, 0]])
        if len(rings) != len(scenario.obstacles):
            raise DataFormatError(
                f"the mesh has {len(rings)} obstacle outline(s) but the scenario "
                f"{len(scenario.obstacles)}"
            )
        centres = np.array([o.center for o in scenario.obstacles], dtype=np.float64)
        ring_centres = np.array(
            [
                points[ring_edges[label[ring_edges[:, 0]] == r]].reshape(-1, 2).mean(axis=0)
                for r in rings
            ]
        )
        distance = np.linalg.norm(ring_centres[:, None] - centres[None], axis=-1)
        for _ in rings:  # greedy: the closest remaining (ring, obstacle) pair first
            r, i = np.unravel_index(np.argmin(distance), distance.shape)
            named[f"obstacle-{i}"] = ring_edges[label[ring_edges[:, 0]] == rings[r]]
            distance[r, :] = np.inf
            distance[:, i] = np.inf

    outer = edges[~on_obstacle]
    x = points[outer][..., 0]
    tol = 1e-6 * max(scenario.tunnel.length, 1.0)
    inlet = (np.abs(x - points[:, 0].min()) < tol).all(axis=1)
    outlet = (np.abs(x - points[:, 0].max()) < tol).all(axis=1)
    named["inflow"] = outer[inlet]
    named["outflow"] = outer[outlet]
    named["walls"] = outer[~inlet & ~outlet]
    return TunnelMesh(points, trajectory.cells, node_type, named)
