"""Taylor–Hood (P2 velocity, P1 pressure) spaces on a tunnel mesh and their element matrices.

Everything is assembled element by element into one fixed sparse pattern per block, so the
per-step convection matrix is a batched small matrix product plus a scatter into the CSR data of
the constant matrices (no per-step sparse-structure work). The convection tensor is precomputed:
N_e[a, b] = Σ_k,d w_kd ∫ φ_a φ_k ∂_d φ_b, so assembling N(w) is one matmul.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from skfem import CellBasis, ElementTriP1, ElementTriP2, MeshTri

from engine.errors import MeshingError
from engine.geometry.mesh import TunnelMesh

# φ_a φ_k ∂φ_b is a degree-5 polynomial on P2: integrate it exactly.
QUADRATURE_ORDER = 5


@dataclass
class ElementPattern:
    """The CSR pattern of an element-assembled matrix and where each local entry lands in it."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    scatter: np.ndarray  # [E * a * b] position in ``data`` of local entry (e, a, b)

    @classmethod
    def from_dofs(
        cls, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
    ) -> ElementPattern:
        """``rows`` [a, E], ``cols`` [b, E]: the element dofs of the test and trial spaces."""
        r = np.broadcast_to(rows.T[:, :, None], (rows.shape[1], rows.shape[0], cols.shape[0]))
        c = np.broadcast_to(cols.T[:, None, :], r.shape)
        keys = r.astype(np.int64).ravel() * shape[1] + c.ravel()
        unique, scatter = np.unique(keys, return_inverse=True)
        row_of = unique // shape[1]
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=shape[0]), out=indptr[1:])
        return cls(shape, indptr, (unique % shape[1]).astype(np.int32), scatter)

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def data(self, local: np.ndarray) -> np.ndarray:
        """Sum local matrices [E, a, b] into this pattern's CSR data."""
        return np.bincount(self.scatter, weights=local.ravel(), minlength=self.nnz)

    def matrix(self, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def diagonal_positions(self) -> np.ndarray:
        """Index into ``data`` of each diagonal entry (square patterns only)."""
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        pos = np.flatnonzero(rows == self.indices)
        if pos.size != self.shape[0]:
            raise ValueError("pattern lacks a full diagonal")
        return pos


@dataclass
class FlowSpaces:
    """P2 velocity / P1 pressure spaces, constant matrices and boundary dofs for one mesh."""

    tunnel: TunnelMesh
    vbasis: CellBasis
    pbasis: CellBasis
    vv: ElementPattern  # P2 x P2
    pp: ElementPattern  # P1 x P1
    pv: ElementPattern  # P1 rows x P2 columns (divergence)
    vp: ElementPattern  # P2 rows x P1 columns (gradient)
    mass: np.ndarray  # vv data: ∫ φ_a φ_b
    stiffness: np.ndarray  # vv data: ∫ ∇φ_a · ∇φ_b
    pressure_laplacian: np.ndarray  # pp data: ∫ ∇ψ_a · ∇ψ_b
    divergence: tuple[np.ndarray, np.ndarray]  # pv data per direction: ∫ ψ_a ∂_d φ_b
    gradient: tuple[np.ndarray, np.ndarray]  # vp data per direction: ∫ φ_a ∂_d ψ_b
    convection_tensor: np.ndarray  # [E, a*b, k*2]
    vertex_dofs: np.ndarray  # [N] P2 dof of each mesh vertex (pressure dofs are the vertices)
    boundary_dofs: dict[str, np.ndarray]  # P2 dofs on each named boundary
    boundary_pressure_dofs: dict[str, np.ndarray]  # P1 dofs on each named boundary

    @property
    def num_velocity_dofs(self) -> int:
        return self.vbasis.N

    @property
    def num_pressure_dofs(self) -> int:
        return self.pbasis.N

    @property
    def velocity_dof_points(self) -> np.ndarray:
        """Coordinates [n2, 2] of the P2 dofs (vertices, then edge midpoints)."""
        return self.vbasis.doflocs.T

    @classmethod
    def build(cls, tunnel: TunnelMesh) -> FlowSpaces:
        try:
            mesh = MeshTri(
                np.ascontiguousarray(tunnel.points.T, dtype=np.float64),
                np.ascontiguousarray(tunnel.cells.T, dtype=np.int64),
            )
        except ValueError as exc:
            raise MeshingError(f"the mesh cannot be used by the solver ({exc})") from None
        vbasis = CellBasis(mesh, ElementTriP2(), intorder=QUADRATURE_ORDER)
        pbasis = vbasis.with_element(ElementTriP1())
        dx = vbasis.dx  # [E, Q]
        phi = np.stack([np.asarray(f[0]) for f in vbasis.basis], axis=1)  # [E, 6, Q]
        dphi = np.stack([f[0].grad for f in vbasis.basis], axis=2)  # [2, E, 6, Q]
        psi = np.stack([np.asarray(f[0]) for f in pbasis.basis], axis=1)  # [E, 3, Q]
        dpsi = np.stack([f[0].grad for f in pbasis.basis], axis=2)  # [2, E, 3, Q]

        vdofs, pdofs = vbasis.element_dofs, pbasis.element_dofs
        nv, np_ = vbasis.N, pbasis.N
        vv = ElementPattern.from_dofs(vdofs, vdofs, (nv, nv))
        pp = ElementPattern.from_dofs(pdofs, pdofs, (np_, np_))
        pv = ElementPattern.from_dofs(pdofs, vdofs, (np_, nv))
        vp = ElementPattern.from_dofs(vdofs, pdofs, (nv, np_))

        mass = vv.data(np.einsum("eaq,ebq,eq->eab", phi, phi, dx))
        stiffness = vv.data(np.einsum("deaq,debq,eq->eab", dphi, dphi, dx))
        laplacian = pp.data(np.einsum("deaq,debq,eq->eab", dpsi, dpsi, dx))
        divergence = tuple(pv.data(np.einsum("eaq,ebq,eq->eab", psi, dphi[d], dx)) for d in (0, 1))
        gradient = tuple(vp.data(np.einsum("eaq,ebq,eq->eab", phi, dpsi[d], dx)) for d in (0, 1))
        # T[e, a, b, k, d] = ∫ φ_a φ_k ∂_d φ_b
        tensor = np.einsum("eaq,ekq,debq,eq->eabkd", phi, phi, dphi, dx, optimize=True)
        n_el, n_loc = phi.shape[0], phi.shape[1]
        tensor = np.ascontiguousarray(tensor.reshape(n_el, n_loc * n_loc, n_loc * 2))

        facet_of = _facet_lookup(mesh)
        boundary_dofs, boundary_pdofs = {}, {}
        for name, edges in tunnel.boundary_edges.items():
            facets = facet_of(edges)
            boundary_dofs[name] = np.unique(vbasis.get_dofs(facets=facets).all())
            boundary_pdofs[name] = np.unique(pbasis.get_dofs(facets=facets).all())
        return cls(
            tunnel=tunnel,
            vbasis=vbasis,
            pbasis=pbasis,
            vv=vv,
            pp=pp,
            pv=pv,
            vp=vp,
            mass=mass,
            stiffness=stiffness,
            pressure_laplacian=laplacian,
            divergence=divergence,
            gradient=gradient,
            convection_tensor=tensor,
            vertex_dofs=np.asarray(vbasis.nodal_dofs[0]),
            boundary_dofs=boundary_dofs,
            boundary_pressure_dofs=boundary_pdofs,
        )

    def convection(self, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """vv data of N(w)[a, b] = ∫ φ_a (w · ∇φ_b) for a P2 velocity field w."""
        edofs = self.vbasis.element_dofs  # [6, E]
        w_local = np.stack([wx[edofs].T, wy[edofs].T], axis=-1)  # [E, 6, 2]
        n_el = w_local.shape[0]
        local = np.matmul(self.convection_tensor, w_local.reshape(n_el, -1, 1))
        return self.vv.data(local)

    def obstacle_dofs(self) -> list[np.ndarray]:
        """P2 dofs on each obstacle's surface, in scenario order."""
        return [self.boundary_dofs[f"obstacle-{i}"] for i in range(self.tunnel.num_obstacles)]


def _facet_lookup(mesh: MeshTri):
    """A function mapping boundary edges [E, 2] (vertex pairs) to skfem facet indices."""
    n = mesh.p.shape[1]
    f = np.sort(mesh.facets, axis=0).astype(np.int64)
    keys = f[0] * n + f[1]
    order = np.argsort(keys)
    sorted_keys = keys[order]

    def lookup(edges: np.ndarray) -> np.ndarray:
        e = np.sort(np.asarray(edges, dtype=np.int64).reshape(-1, 2), axis=1)
        k = e[:, 0] * n + e[:, 1]
        pos = np.searchsorted(sorted_keys, k)
        pos = np.minimum(pos, len(sorted_keys) - 1)
        if not np.array_equal(sorted_keys[pos], k):
            raise MeshingError("a boundary edge of the mesh is not an edge of its triangles")
        return order[pos]

    return lookup
