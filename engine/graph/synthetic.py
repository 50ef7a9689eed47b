"""Structured triangle meshes of a channel with a square obstacle, of any size, without gmsh.

Used by benchmarks to reach 300k nodes in seconds and by tests that need a predictable mesh;
real scenarios are meshed by ``engine.geometry``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.geometry.mesh import TunnelMesh
from engine.nodetypes import NodeType
from engine.scenario import Circle, Scenario

# The scenario to pair with structured_channel_mesh's default channel: the DFG cylinder whose
# bounding box its square obstacle is (benchmarks and the app's model warm-up step on both).
SYNTHETIC_SCENARIO = Scenario(obstacles=(Circle((0.2, 0.2), 0.05),))


def _boundary_edges(cells: np.ndarray) -> np.ndarray:
    n = int(cells.max()) + 1
    e = np.sort(np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]]), axis=1)
    keys, counts = torch.unique(torch.from_numpy(e[:, 0] * n + e[:, 1]), return_counts=True)
    once = keys[counts == 1].numpy()
    return np.stack([once // n, once % n], axis=1)


def structured_channel_mesh(
    target_nodes: int,
    length: float = 2.2,
    height: float = 0.41,
    square: tuple[float, float, float] | None = (0.2, 0.2, 0.1),
) -> TunnelMesh:
    """A channel [0, length] × [0, height] of right triangles with about ``target_nodes`` nodes.

    ``square`` = (centre x, centre y, side) cuts out a square obstacle (the DFG cylinder's
    bounding box by default); ``None`` leaves the channel empty.
    """
    if target_nodes < 16:
        raise ValueError(f"target_nodes must be at least 16, got {target_nodes}")
    ny = max(3, round(math.sqrt(target_nodes * height / length)))
    nx = max(3, round(target_nodes / ny))
    xs, ys = np.linspace(0.0, length, nx), np.linspace(0.0, height, ny)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    cells = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])  # counter-clockwise

    if square is not None:
        cx, cy, side = square
        centroid = points[cells].mean(axis=1)
        inside = (np.abs(centroid[:, 0] - cx) < side / 2) & (np.abs(centroid[:, 1] - cy) < side / 2)
        cells = cells[~inside]
    used = torch.unique(torch.from_numpy(cells)).numpy()
    remap = np.full(len(points), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    points, cells = points[used], remap[cells]

    x, y = points[:, 0], points[:, 1]
    eps = 1e-9 * max(length, height)
    on_in, on_out = x < eps, x > length - eps
    on_wall = (y < eps) | (y > height - eps)
    node_type = np.full(len(points), NodeType.NORMAL, dtype=np.int64)
    boundary = _boundary_edges(cells)
    on_boundary = np.zeros(len(points), dtype=bool)
    on_boundary[boundary.ravel()] = True
    node_type[on_boundary & ~(on_in | on_out | on_wall)] = NodeType.OBSTACLE
    node_type[on_out] = NodeType.OUTFLOW
    node_type[on_in] = NodeType.INFLOW
    node_type[on_wall] = NodeType.WALL_BOUNDARY

    def edges_where(mask: np.ndarray) -> np.ndarray:
        return boundary[mask[boundary[:, 0]] & mask[boundary[:, 1]]]

    groups = {
        "inflow": edges_where(on_in),
        "outflow": edges_where(on_out),
        "walls": boundary[
            (on_wall[boundary[:, 0]] & on_wall[boundary[:, 1]])
            & (np.abs(y[boundary[:, 0]] - y[boundary[:, 1]]) < eps)
        ],
    }
    if square is not None:
        outer = on_in | on_out | on_wall
        groups["obstacle-0"] = boundary[~(outer[boundary[:, 0]] & outer[boundary[:, 1]])]
    return TunnelMesh(points=points, cells=cells, node_type=node_type, boundary_edges=groups)
