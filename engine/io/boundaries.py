"""Node types for imported meshes that carry no tags: the geometry loader's rule, not a second one.

A tunnel is assumed (``engine.geometry.meshfile``): the bounding box's left side is the inflow,
the right side the outflow, the rest of the outer loop walls, every inner loop an obstacle.
"""

from __future__ import annotations

import numpy as np

from engine.geometry.meshfile import _edges_from_geometry
from engine.geometry.tunnel import node_types_from_edges


def infer_boundary_edges(points: np.ndarray, cells: np.ndarray) -> dict[str, np.ndarray]:
    """``inflow``/``outflow``/``walls``/``obstacle-<i>`` edges, as a TunnelMesh names them."""
    return _edges_from_geometry(np.asarray(points, dtype=np.float64)[:, :2], cells)


def infer_node_types(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Node types [N] (MeshGraphNets numbering) of an untagged tunnel mesh."""
    return node_types_from_edges(len(points), infer_boundary_edges(points, cells))
