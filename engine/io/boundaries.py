"""Imported triangle meshes made to look like ours: orientation, boundary names, node types.

Meshes that carry no tags of their own are taken to be a tunnel: flow enters at the left side of
the bounding box and leaves at the right, the top and bottom sides are walls, and every other
boundary loop is an obstacle. Node types then follow our meshes' corner rules.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from engine.geometry.tunnel import node_types_from_edges


def counter_clockwise(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """``cells`` with clockwise triangles flipped, as TunnelMesh promises."""
    p = np.asarray(points)[:, :2]
    a, b, c = p[cells[:, 0]], p[cells[:, 1]], p[cells[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    cells = np.array(cells, dtype=np.int64)
    cells[area2 < 0] = cells[area2 < 0][:, [0, 2, 1]]
    return cells


def boundary_edges(cells: np.ndarray) -> np.ndarray:
    """Edges [E, 2] used by exactly one triangle (the outer and the obstacle boundaries)."""
    e = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]])
    e.sort(axis=1)
    unique, counts = np.unique(e, axis=0, return_counts=True)
    return unique[counts == 1]


def infer_boundary_edges(points: np.ndarray, cells: np.ndarray) -> dict[str, np.ndarray]:
    """``inflow``/``outflow``/``walls``/``obstacle-<i>`` edges, as a TunnelMesh names them.

    Obstacles are numbered from left to right (by their leftmost vertex).
    """
    points = np.asarray(points, dtype=np.float64)[:, :2]
    edges = boundary_edges(np.asarray(cells, dtype=np.int64))
    lo, hi = points.min(axis=0), points.max(axis=0)
    tol = 1e-6 * float(np.max(hi - lo))
    ends = points[edges]  # [E, 2 ends, 2 coords]

    def on(axis: int, value: float) -> np.ndarray:
        return np.all(np.abs(ends[:, :, axis] - value) <= tol, axis=1)

    left, right = on(0, lo[0]), on(0, hi[0])
    walls = (on(1, lo[1]) | on(1, hi[1])) & ~left & ~right
    named = {"inflow": edges[left], "outflow": edges[right], "walls": edges[walls]}

    inner = edges[~(left | right | walls)]
    if len(inner):
        n = len(points)
        graph = coo_matrix((np.ones(len(inner)), (inner[:, 0], inner[:, 1])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        loops = [inner[label[inner[:, 0]] == k] for k in np.unique(label[inner[:, 0]])]
        loops.sort(key=lambda loop: points[loop.ravel(), 0].min())
        named.update({f"obstacle-{i}": loop for i, loop in enumerate(loops)})
    return named


def infer_node_types(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Node types [N] (MeshGraphNets numbering) of an untagged tunnel mesh."""
    return node_types_from_edges(len(points), infer_boundary_edges(points, cells))
