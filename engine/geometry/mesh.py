"""The triangulated tunnel every other part of the engine works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.nodetypes import NodeType


@dataclass
class TunnelMesh:
    """A 2D triangle mesh of the fluid domain with boundary information.

    ``boundary_edges`` maps a boundary name to its edges as vertex-index pairs [E, 2]. Names:
    ``inflow``, ``outflow``, ``walls`` (top and bottom) and ``obstacle-<i>`` for obstacle i of the
    scenario (in scenario order). A vertex shared by two boundaries gets the node type of the
    stronger condition: inflow and walls win over outflow (they fix the velocity).
    """

    points: np.ndarray  # [N, 2] float64
    cells: np.ndarray  # [C, 3] int64, counter-clockwise
    node_type: np.ndarray  # [N] int64, NodeType values
    boundary_edges: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.points.shape[0])

    @property
    def num_obstacles(self) -> int:
        return sum(1 for k in self.boundary_edges if k.startswith("obstacle-"))

    def obstacle_edges(self, i: int) -> np.ndarray:
        return self.boundary_edges[f"obstacle-{i}"]

    def edges(self) -> np.ndarray:
        """Unique undirected mesh edges [E, 2] with i < j (the graph's adjacency)."""
        e = np.concatenate([self.cells[:, [0, 1]], self.cells[:, [1, 2]], self.cells[:, [2, 0]]])
        e.sort(axis=1)
        return np.unique(e, axis=0)

    def nodes_of(self, kind: NodeType) -> np.ndarray:
        return np.flatnonzero(self.node_type == kind)


def p1_gradient_weights(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Weights [C, 3, 2]: the gradient of the linear interpolant of vertex values f on triangle c
    is Σ_k weights[c, k] f[cells[c, k]] (weights[c, k] is the gradient of corner k's hat
    function). Surface forces and the mass projection of learned steps both build on it."""
    x = points[cells]  # [C, 3, 2]
    d1, d2 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    w1 = np.stack([d2[:, 1], -d2[:, 0]], axis=-1) / det[:, None]  # ∂/∂f1
    w2 = np.stack([-d1[:, 1], d1[:, 0]], axis=-1) / det[:, None]  # ∂/∂f2
    return np.stack([-(w1 + w2), w1, w2], axis=1)
