"""Fields derived from the stored velocity, computed the same way for export and for the app.

The vertex gradient is a fixed sparse operator of the mesh, so it is built once per mesh and then
costs one sparse product per field per frame (the app recolours every frame by vorticity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class VertexGradient:
    """Linear (P1) gradient on each triangle, area-weighted and averaged onto the vertices.

    ``dx @ f`` and ``dy @ f`` give ∂f/∂x and ∂f/∂y at the vertices for a vertex field ``f`` [N]
    (or [N, k] for k fields at once). Exact for linear fields, first-order accurate otherwise.
    Vertices that belong to no cell get zero.
    """

    dx: sp.csr_matrix  # [N, N]
    dy: sp.csr_matrix  # [N, N]

    @classmethod
    def from_mesh(cls, points: np.ndarray, cells: np.ndarray) -> VertexGradient:
        points = np.asarray(points, dtype=np.float64)[:, :2]
        cells = np.asarray(cells, dtype=np.int64)
        n = points.shape[0]
        x, y = points[cells, 0], points[cells, 1]  # [C, 3]
        # Area x gradient of the hat function of corner j is half the opposite edge turned by 90°,
        # with the orientation's sign; weighting by |area| therefore needs no division per cell
        # and degenerate cells simply contribute nothing.
        twice_area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (
            y[:, 1] - y[:, 0]
        )
        sign = np.sign(twice_area)[:, None]
        nxt, prv = [1, 2, 0], [2, 0, 1]
        area_gx = 0.5 * sign * (y[:, nxt] - y[:, prv])  # [C, 3]: |A| ∂φ_j/∂x
        area_gy = 0.5 * sign * (x[:, prv] - x[:, nxt])
        cell_area = np.repeat(0.5 * np.abs(twice_area), 3)
        weight = np.bincount(cells.ravel(), weights=cell_area, minlength=n)
        inv_weight = np.divide(1.0, weight, out=np.zeros(n), where=weight > 0)

        rows = np.repeat(cells, 3, axis=1).ravel()  # receiving vertex k, for each (k, j) in a cell
        cols = np.tile(cells, (1, 3)).ravel()  # contributing vertex j
        gx = np.tile(area_gx, (1, 3)).ravel() * inv_weight[rows]
        gy = np.tile(area_gy, (1, 3)).ravel() * inv_weight[rows]
        dx = sp.csr_matrix((gx, (rows, cols)), shape=(n, n))
        dy = sp.csr_matrix((gy, (rows, cols)), shape=(n, n))
        dx.sum_duplicates()
        dy.sum_duplicates()
        return cls(dx=dx, dy=dy)

    def vorticity(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """ω = ∂v/∂x − ∂u/∂y at the vertices; ``u``, ``v`` are [N] or [N, k]."""
        return self.dx @ v - self.dy @ u


def vorticity(points: np.ndarray, cells: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vorticity [N] of one velocity field; build a :class:`VertexGradient` to do many frames."""
    return VertexGradient.from_mesh(points, cells).vorticity(u, v)


def speed(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v)
