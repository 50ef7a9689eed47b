"""Mesh-quality figures: the numbers that predict whether a solver or a learned model will cope."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.geometry.mesh import TunnelMesh
from engine.nodetypes import NodeType


@dataclass(frozen=True)
class MeshQuality:
    """Summary of a triangle mesh's shape quality.

    ``max_aspect_ratio`` is circumradius / (2 × inradius): 1 for an equilateral triangle,
    growing without bound as a triangle flattens.
    """

    num_nodes: int
    num_cells: int
    min_angle_deg: float
    max_aspect_ratio: float
    min_area: float
    mean_area: float
    node_type_counts: dict[str, int]

    def __str__(self) -> str:
        counts = ", ".join(f"{name} {n}" for name, n in self.node_type_counts.items())
        return (
            f"nodes {self.num_nodes}, triangles {self.num_cells}\n"
            f"min angle {self.min_angle_deg:.1f}°, max aspect ratio {self.max_aspect_ratio:.2f}\n"
            f"area min {self.min_area:.3g}, mean {self.mean_area:.3g}\n"
            f"node types: {counts}"
        )


def triangle_angles_deg(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Interior angles [C, 3] in degrees."""
    p = points[cells]
    angles = []
    for k in range(3):
        u = p[:, (k + 1) % 3] - p[:, k]
        v = p[:, (k + 2) % 3] - p[:, k]
        cos = np.einsum("ij,ij->i", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.stack(angles, axis=1)


def triangle_areas(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Signed areas [C]: positive for counter-clockwise triangles."""
    a, b, c = points[cells[:, 0]], points[cells[:, 1]], points[cells[:, 2]]
    return 0.5 * (
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    )


def mesh_quality(mesh: TunnelMesh) -> MeshQuality:
    p = mesh.points[mesh.cells]
    lengths = np.stack(
        [np.linalg.norm(p[:, (k + 1) % 3] - p[:, k], axis=1) for k in range(3)], axis=1
    )
    area = triangle_areas(mesh.points, mesh.cells)
    semi = 0.5 * lengths.sum(axis=1)
    with np.errstate(divide="ignore"):
        inradius = np.abs(area) / semi
        circumradius = lengths.prod(axis=1) / (4.0 * np.abs(area))
        aspect = circumradius / (2.0 * inradius)
    counts = np.bincount(mesh.node_type, minlength=max(NodeType) + 1)
    return MeshQuality(
        num_nodes=mesh.num_nodes,
        num_cells=int(mesh.cells.shape[0]),
        min_angle_deg=float(triangle_angles_deg(mesh.points, mesh.cells).min()),
        max_aspect_ratio=float(aspect.max()),
        min_area=float(area.min()),
        mean_area=float(area.mean()),
        node_type_counts={kind.name: int(counts[kind]) for kind in NodeType if counts[kind]},
    )
