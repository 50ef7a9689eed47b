"""Linear algebra on batches of independent systems laid out as padded rows ``[B, n]``.

Each trajectory of a batch has its own mesh, so its matrices differ; they are stacked into one
block-diagonal CSR matrix (one sparse product per batch) and every Krylov reduction is taken per
row, so system b converges exactly as it would alone. Padding dofs (meshes smaller than the
batch's widest) have empty matrix rows and are treated like Dirichlet dofs: fixed at zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from engine.solver.spaces import ElementPattern

Operator = Callable[[torch.Tensor], torch.Tensor]


def _csr(crow: torch.Tensor, col: torch.Tensor, data: torch.Tensor, shape: tuple[int, int]):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, data, shape, check_invariants=False)


@dataclass
class BatchedPattern:
    """One sparsity pattern per mesh, stacked block-diagonally with padded row/column blocks.

    ``offsets[b]`` is where mesh b's CSR data starts in the batched data vector, so the data of
    the batch is simply the per-mesh data concatenated; ``scatter`` maps the element-local entries
    of every mesh (concatenated in batch order) to positions in that vector.
    """

    rows: int  # padded rows per block
    cols: int  # padded columns per block
    batch: int
    crow: torch.Tensor
    col: torch.Tensor
    offsets: np.ndarray  # [B + 1]
    scatter: torch.Tensor  # [sum_b E_b * a * b]

    def __post_init__(self) -> None:
        # 32-bit indices where they fit: every sparse product streams them, and at batch 512
        # they are as many bytes as the fp64 values themselves.
        limit = torch.iinfo(torch.int32).max
        if max(self.batch * max(self.rows, self.cols), int(self.crow[-1])) < limit:
            self.crow = self.crow.to(torch.int32)
            self.col = self.col.to(torch.int32)

    @classmethod
    def stack(
        cls,
        patterns: Sequence[ElementPattern],
        rows: int,
        cols: int,
        device: torch.device | str = "cpu",
    ) -> BatchedPattern:
        crows, columns, scatters = [], [], []
        offsets = np.zeros(len(patterns) + 1, dtype=np.int64)
        for b, pat in enumerate(patterns):
            n_rows, n_cols = pat.shape
            if n_rows > rows or n_cols > cols:
                raise ValueError(f"pattern {pat.shape} exceeds the padded block ({rows}, {cols})")
            indptr = np.concatenate([pat.indptr, np.full(rows - n_rows, pat.indptr[-1])])
            crows.append(indptr[:-1] + offsets[b])
            columns.append(pat.indices.astype(np.int64) + b * cols)
            scatters.append(pat.scatter.astype(np.int64) + offsets[b])
            offsets[b + 1] = offsets[b] + pat.nnz
        crow = np.concatenate([*crows, offsets[-1:]])
        return cls(
            rows=rows,
            cols=cols,
            batch=len(patterns),
            crow=torch.as_tensor(crow, device=device),
            col=torch.as_tensor(np.concatenate(columns), device=device),
            offsets=offsets,
            scatter=torch.as_tensor(np.concatenate(scatters), device=device),
        )

    @property
    def nnz(self) -> int:
        return int(self.offsets[-1])

    def data(self, per_mesh: Sequence[np.ndarray], dtype: torch.dtype) -> torch.Tensor:
        """The batched data vector from each mesh's CSR data."""
        return torch.as_tensor(np.concatenate(per_mesh), dtype=dtype, device=self.crow.device)

    def assemble_local(self, local: torch.Tensor) -> torch.Tensor:
        """Sum element matrices (all meshes, flattened in batch order) into a data vector."""
        out = torch.zeros(self.nnz, dtype=local.dtype, device=local.device)
        return out.index_add_(0, self.scatter, local.reshape(-1))

    def matrix(self, data: torch.Tensor) -> BatchedMatrix:
        shape = (self.batch * self.rows, self.batch * self.cols)
        return BatchedMatrix(_csr(self.crow, self.col, data, shape), self.batch, self.rows)


@dataclass
class BatchedMatrix:
    """Block-diagonal sparse matrix on padded vectors ``[B, cols]`` or ``[B, cols, k]``."""

    csr: torch.Tensor
    batch: int
    rows: int

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        # One sparse matrix-vector product per column: on an H200, CSR times a [N, 2] block
        # took 2.4 ms where two products with contiguous vectors took 0.66 ms (48M nonzeros).
        flat = x.reshape(self.csr.shape[1], -1)
        columns = [self.csr @ flat[:, j].contiguous() for j in range(flat.shape[1])]
        return torch.stack(columns, dim=-1).reshape(self.batch, self.rows, *x.shape[2:])


class DenseInverse:
    """Per-system dense inverses of SPD matrices, applied as a few batched matrix products.

    A 2k-unknown P1 Laplacian inverse is 32 MB in fp64, so hundreds fit on one GPU and the
    pressure Poisson solve becomes one ``bmm`` per size bucket; in fp32 it is a near-exact
    preconditioner for CG at half the memory (the 20k-node meshes). Systems are bucketed by
    size (each bucket padded only to its own largest, within ``bucket_ratio``) because padding
    costs quadratically here: one 3.5k-dof mesh would otherwise triple every 2k mesh's inverse.
    Padding rows and columns are identity.
    """

    def __init__(
        self,
        matrices: Sequence[sp.spmatrix],
        size: int,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
        bucket_ratio: float = 1.25,
        chunk_bytes: int = 2**30,
    ) -> None:
        self.chunk_bytes = chunk_bytes  # fp64 working memory of one batched factorisation
        sizes = np.array([a.shape[0] for a in matrices])
        if sizes.max(initial=0) > size:
            raise ValueError(f"a matrix of {sizes.max()} rows exceeds the padded size {size}")
        order = np.argsort(-sizes, kind="stable")
        self.buckets: list[tuple[torch.Tensor, torch.Tensor]] = []  # (systems, inverses)
        start = 0
        while start < len(order):
            width = int(sizes[order[start]])
            stop = start
            while stop < len(order) and sizes[order[stop]] * bucket_ratio >= width:
                stop += 1
            members = order[start:stop]
            inverse = torch.empty((len(members), width, width), dtype=dtype, device=device)
            # Factorised a chunk at a time: one batched Cholesky per chunk instead of one
            # call per system, whose launches and syncs dominated a batch's set-up on a GPU.
            chunk = max(1, self.chunk_bytes // (8 * width * width))
            for k in range(0, len(members), chunk):
                part = [matrices[b] for b in members[k : k + chunk]]
                inverse[k : k + len(part)] = _dense_inverses(part, width, device).to(dtype)
            systems = torch.as_tensor(members.astype(np.int64), device=device)
            self.buckets.append((systems, inverse))
            start = stop

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        z = r.clone()  # padding dofs: identity
        for systems, inverse in self.buckets:
            width = inverse.shape[-1]
            part = r[systems, :width].to(inverse.dtype).unsqueeze(-1)
            z[systems, :width] = torch.bmm(inverse, part).squeeze(-1).to(r.dtype)
        return z


def _dense_inverses(
    matrices: Sequence[sp.spmatrix], width: int, device: torch.device | str
) -> torch.Tensor:
    """fp64 inverses [k, width, width] of SPD ``matrices``, each padded with identity to
    ``width``, densified on the device so host memory never holds a dense matrix."""
    coo = [a.tocoo() for a in matrices]
    dense = torch.eye(width, dtype=torch.float64, device=device).repeat(len(coo), 1, 1)
    for k, a in enumerate(coo):
        dense[k, : a.shape[0], : a.shape[0]] = 0.0
    index = [
        torch.as_tensor(np.concatenate(parts).astype(np.int64), device=device)
        for parts in (
            [np.full(a.nnz, k) for k, a in enumerate(coo)],
            [a.row for a in coo],
            [a.col for a in coo],
        )
    ]
    values = torch.as_tensor(np.concatenate([a.data for a in coo]), device=device)
    dense.index_put_(tuple(index), values.to(torch.float64), accumulate=True)
    return torch.cholesky_inverse(torch.linalg.cholesky(dense))


@dataclass
class KrylovResult:
    x: torch.Tensor
    iterations: int  # the batch's: what it cost
    residual: torch.Tensor  # [B] final relative residual per system
    per_system: torch.Tensor  # [B] iterations each system was still active: what it needed


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=tuple(range(1, a.ndim)))


def relative_residual(r: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B] ‖r‖ / ‖b‖ of each system (0 where b = 0 and r = 0)."""
    return torch.sqrt(_dot(r, r)) / torch.sqrt(_dot(b, b)).clamp_min(torch.finfo(b.dtype).tiny)


def _per_row(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.reshape(-1, *([1] * (like.ndim - 1)))


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den != 0, num / torch.where(den != 0, den, 1), torch.zeros_like(num))


def jacobi_sweeps(
    apply_a: Operator, inverse_diagonal: torch.Tensor, sweeps: int, damping: float
) -> Operator:
    """Preconditioner: ``sweeps`` damped Jacobi iterations on A z = r from z = 0.

    One sweep is plain Jacobi. Two cost one more product with A per application but, on the
    momentum systems of 2k-vertex envelope flows at frame 300, cut BiCGStab's iterations to
    1e-8 from 62/42/26/33 to 21/16/10/16 at damping 0.8 (scipy, the CPU; undamped sweeps beyond
    two diverged, because Jacobi itself does not converge on these convection-dominated
    systems).
    """
    if sweeps == 1:
        return inverse_diagonal.__mul__

    def apply(r: torch.Tensor) -> torch.Tensor:
        z = damping * inverse_diagonal * r
        for _ in range(sweeps - 1):
            z = z + damping * inverse_diagonal * (r - apply_a(z))
        return z

    return apply


class Krylov:
    """A preconditioned Krylov method on a batch of independent systems, one per leading index.

    The solver owns its vectors, so one instance serves every time step of a simulation: on
    CUDA, ``check_every`` iterations are captured once as a CUDA graph and replayed. Eager
    PyTorch spends ~1 ms of kernel launches per BiCGStab iteration whatever the batch size
    (measured on an H200), which made small batches launch-bound; a replay costs one launch.
    ``apply_a`` and ``precondition`` must therefore read only tensors that stay in place
    (update matrix data with ``copy_``, never rebind it).

    Systems that have converged stop moving (their step length is zeroed), so a batch returns
    what each system would alone. Convergence is checked on the host every ``check_every``
    iterations, which is also the granularity of the iteration count.
    """

    def __init__(
        self,
        apply_a: Operator,
        precondition: Operator,
        like: torch.Tensor,
        *,
        rtol: float,
        max_iterations: int,
        check_every: int = 4,
        cuda_graph: bool = True,
    ) -> None:
        self.apply_a, self.precondition = apply_a, precondition
        self.max_iterations, self.check_every = max_iterations, check_every
        self.x = torch.zeros_like(like)
        self.r = torch.zeros_like(like)
        batch = like.shape[0]
        self.b_norm = torch.ones(batch, dtype=like.dtype, device=like.device)
        self.default_rtol = rtol
        self.rtol = torch.full_like(self.b_norm, rtol)  # per system, see solve()
        self.active = torch.zeros(batch, dtype=torch.bool, device=like.device)
        self.needed = torch.zeros(batch, dtype=torch.int32, device=like.device)
        self._use_graph = cuda_graph and like.device.type == "cuda"
        self._graph: torch.cuda.CUDAGraph | None = None

    def solve(
        self,
        b: torch.Tensor,
        x0: torch.Tensor,
        rtol: torch.Tensor | None = None,
        stop_at: int = 0,
        max_iterations: int | None = None,
    ) -> KrylovResult:
        """Solve A x = b from ``x0`` to the relative residual ``rtol`` ([B]; default: the
        constructor's for every system), or until at most ``stop_at`` systems are left, within
        ``max_iterations`` (default: the constructor's)."""
        limit = self.max_iterations if max_iterations is None else max_iterations
        self.rtol.copy_(self.default_rtol if rtol is None else rtol)
        self.x.copy_(x0)
        self.r.copy_(b - self.apply_a(self.x))
        self.b_norm.copy_(torch.sqrt(_dot(b, b)).clamp_min(torch.finfo(b.dtype).tiny))
        self.active.copy_(self._unconverged())
        self.needed.zero_()
        self._start()
        it = 0
        while it < limit and int(self.active.sum()) > stop_at:
            self._chunk()
            it += self.check_every
        residual = torch.sqrt(_dot(self.r, self.r)) / self.b_norm
        return KrylovResult(self.x.clone(), it, residual, self.needed.clone())

    def _unconverged(self) -> torch.Tensor:
        return torch.sqrt(_dot(self.r, self.r)) > self.rtol * self.b_norm

    def _chunk(self) -> None:
        if not self._use_graph:
            self._iterations()
            return
        if self._graph is None:
            self._graph = self._capture()
            if self._graph is None:
                self._use_graph = False
                self._iterations()
                return
        self._graph.replay()

    def _iterations(self) -> None:
        for _ in range(self.check_every):
            self.needed.add_(self.active)
            self._iterate()

    def _capture(self) -> torch.cuda.CUDAGraph | None:
        """Record ``check_every`` iterations; None (and stay eager) if the device refuses.

        The state is saved and restored around the warm-up and the capture, so recording
        leaves the solve exactly where it was.
        """
        saved = {k: v.clone() for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        try:
            # Streams and the capture belong to the current device: make it the solve's, or a
            # solve on cuda:1 records an empty graph on cuda:0's stream and poisons the context.
            with torch.cuda.device(self.x.device):
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):  # warm-up: library handles and workspaces
                    self._iterations()
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self._iterations()
        except RuntimeError as exc:
            warnings.warn(f"CUDA graph capture failed, solving eagerly: {exc}", stacklevel=2)
            graph = None
        for k, v in saved.items():
            getattr(self, k).copy_(v)
        return graph

    def _start(self) -> None:
        raise NotImplementedError

    def _iterate(self) -> None:
        raise NotImplementedError


class ConjugateGradient(Krylov):
    """Preconditioned conjugate gradients for SPD systems."""

    def __init__(self, apply_a: Operator, precondition: Operator, like: torch.Tensor, **kw) -> None:
        super().__init__(apply_a, precondition, like, **kw)
        self.p = torch.zeros_like(like)
        self.rz = torch.ones_like(self.b_norm)

    def _start(self) -> None:
        self.p.zero_()
        self.rz.fill_(1.0)

    def _iterate(self) -> None:
        z = self.precondition(self.r)
        rz_new = _dot(self.r, z)
        # First iteration: p = 0 and rz = 1, so p becomes z.
        self.p.copy_(z + _per_row(_safe_div(rz_new, self.rz), self.p) * self.p)
        self.rz.copy_(rz_new)
        ap = self.apply_a(self.p)
        alpha = torch.where(self.active, _safe_div(self.rz, _dot(self.p, ap)), 0)
        self.x.add_(_per_row(alpha, self.x) * self.p)
        self.r.sub_(_per_row(alpha, self.r) * ap)
        self.active.logical_and_(self._unconverged())


class BiCGStab(Krylov):
    """Right-preconditioned BiCGStab for nonsymmetric systems."""

    def __init__(self, apply_a: Operator, precondition: Operator, like: torch.Tensor, **kw) -> None:
        super().__init__(apply_a, precondition, like, **kw)
        self.r_hat = torch.zeros_like(like)
        self.p = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.rho = torch.ones_like(self.b_norm)
        self.alpha = torch.ones_like(self.b_norm)
        self.omega = torch.ones_like(self.b_norm)

    def _start(self) -> None:
        self.r_hat.copy_(self.r)
        self.p.zero_()
        self.v.zero_()
        for s in (self.rho, self.alpha, self.omega):
            s.fill_(1.0)

    def _iterate(self) -> None:
        rho_new = _dot(self.r_hat, self.r)
        beta = _safe_div(rho_new, self.rho) * _safe_div(self.alpha, self.omega)
        self.p.copy_(
            self.r + _per_row(beta, self.p) * (self.p - _per_row(self.omega, self.v) * self.v)
        )
        p_hat = self.precondition(self.p)
        self.v.copy_(self.apply_a(p_hat))
        self.alpha.copy_(torch.where(self.active, _safe_div(rho_new, _dot(self.r_hat, self.v)), 0))
        s = self.r - _per_row(self.alpha, self.v) * self.v
        s_hat = self.precondition(s)
        t = self.apply_a(s_hat)
        self.omega.copy_(torch.where(self.active, _safe_div(_dot(t, s), _dot(t, t)), 0))
        self.x.add_(_per_row(self.alpha, self.x) * p_hat + _per_row(self.omega, self.x) * s_hat)
        self.r.copy_(s - _per_row(self.omega, t) * t)
        self.rho.copy_(rho_new)
        self.active.logical_and_(self._unconverged())


class Refined:
    """Mixed-precision iterative refinement: fp64 residuals, fp32 Krylov corrections.

    At the batch sizes that fill a GPU the Krylov iterations are bound by memory bandwidth,
    and fp32 halves the bytes of every vector and of the matrix values. Each round computes
    the residual in fp64 and asks ``inner`` (an fp32 solver) for a correction reduced by just
    what the fp64 tolerance still needs, but no further than ``inner_floor`` (what fp32 can
    reach), so the result meets the same fp64 relative residual as an fp64 solve would.
    Systems already converged get a zero right-hand side and so a zero correction.

    A batch's Krylov solve costs as many iterations as its slowest system needs, and the
    spread is wide (H200 data generation, 2k-node flows: median 10 momentum iterations per
    sub-step, 90th percentile 21, max 59). With ``stragglers``, a round stops once the
    unconverged systems fit that small solver, which finishes them in the next round.

    Two guards keep one bad system from costing or corrupting the batch: each system's rounds
    share one budget of ``max_iterations`` (a system that has spent it stops, so a blowing-up
    system costs the batch at most that, and never starves a healthy one of its rounds), and
    a round whose correction does not lower a system's fp64 residual (an fp32 BiCGStab
    breakdown can return a correction of 1e12) is undone for that system, which then stops,
    unless the round only left it mid-solve for the stragglers. Such a system comes back with
    its residual above ``rtol``; the caller decides what that means (the stepper redoes the
    solve by LU, as the CPU solver falls back).
    """

    def __init__(
        self,
        apply_a: Operator,
        inner: Krylov,
        *,
        rtol: float,
        inner_floor: float = 1e-5,
        max_rounds: int = 8,
        max_iterations: int | None = None,
        stragglers: Stragglers | None = None,
    ) -> None:
        self.apply_a, self.inner, self.stragglers = apply_a, inner, stragglers
        self.rtol, self.inner_floor, self.max_rounds = rtol, inner_floor, max_rounds
        self.max_iterations = inner.max_iterations if max_iterations is None else max_iterations

    def solve(self, b: torch.Tensor, x0: torch.Tensor) -> KrylovResult:
        x = x0.clone()
        r = b - self.apply_a(x)
        r_norm = torch.sqrt(_dot(r, r))
        b_norm = torch.sqrt(_dot(b, b)).clamp_min(torch.finfo(b.dtype).tiny)
        iterations = 0
        needed = torch.zeros(b.shape[0], dtype=torch.int32, device=b.device)
        stopped = torch.zeros(b.shape[0], dtype=torch.bool, device=b.device)
        for _ in range(self.max_rounds):
            active = (r_norm > self.rtol * b_norm) & ~stopped & (needed < self.max_iterations)
            if not bool(active.any()):
                break
            # Half the reduction still needed (a margin for fp32 rounding), within the floor.
            reduction = 0.5 * self.rtol * b_norm / r_norm.clamp_min(torch.finfo(b.dtype).tiny)
            rtol = reduction.clamp(self.inner_floor, 0.5).to(self.inner.rtol.dtype)
            left = self.stragglers.fits(active) if self.stragglers else None
            step = torch.zeros_like(x)
            cut = torch.zeros_like(stopped)  # left mid-solve for the stragglers, see below
            if left is not None:
                result = self.stragglers.solve(r, rtol, left)
                step.index_add_(0, left, result.x.to(x.dtype))
                needed.index_add_(0, left, result.per_system)
            else:  # only full-batch iterations count toward what the batch paid
                rhs = (_per_row(active, r) * r).to(self.inner.x.dtype)
                stop_at = self.stragglers.capacity if self.stragglers else 0
                limit = self.max_iterations - int(needed[active].min())  # the freshest's
                result = self.inner.solve(rhs, torch.zeros_like(rhs), rtol, stop_at, limit)
                needed += result.per_system
                iterations += result.iterations
                step = result.x.to(x.dtype)
                if stop_at and result.iterations < limit:
                    cut = active & (result.residual > rtol)
            trial = x + _per_row(active, step) * step  # the others are done or stopped
            r_trial = b - self.apply_a(trial)
            trial_norm = torch.sqrt(_dot(r_trial, r_trial))
            undo = active & ~(trial_norm < r_norm)  # also catches NaN
            # A system the round left mid-solve (at most `stop_at` were left, and the stragglers
            # finish them) holds an unfinished BiCGStab iterate, whose residual need not have
            # fallen: that correction is undone, but the system goes on. Stopping it instead
            # failed seed 0 #169, #251, #568, #574 and #817 on the H200 (batches of 210 and
            # 234), whose CPU trajectories run to the end; on the CPU, #568 in a batch of 4 with
            # room for 2 stragglers: inner residual 1.2 after a 4-iteration cut round.
            stopped |= undo & ~cut
            keep = _per_row(undo, x)
            x = torch.where(keep, x, trial)
            r = torch.where(keep, r, r_trial)
            r_norm = torch.where(undo, r_norm, trial_norm)
        return KrylovResult(x, iterations, r_norm / b_norm, needed)


class Stragglers:
    """The last unconverged systems of a batch, gathered into a small batch of their own.

    Their matrices are taken from the batch's CSR data (``data``, updated in place by its
    owner) into an ELL layout of ``capacity`` systems (every row padded to the longest), whose
    product is a gather and a sum: cheap to build for any subset and, with fixed shapes,
    replayable as a CUDA graph like the big solve.
    """

    def __init__(
        self,
        method: type[Krylov],
        pattern: BatchedPattern,
        data: torch.Tensor,
        mask: torch.Tensor,
        jacobi: torch.Tensor,
        capacity: int,
        sweeps: int = 1,
        damping: float = 1.0,
        **kw,
    ) -> None:
        self.pattern, self.data, self.mask, self.jacobi = pattern, data, mask, jacobi
        self.capacity = capacity
        self.crow = pattern.crow.to(torch.int64)
        self.col = pattern.col.to(torch.int64)
        n = pattern.rows
        self.width = int((self.crow[1:] - self.crow[:-1]).max())
        like = torch.zeros((capacity, *jacobi.shape[1:]), dtype=jacobi.dtype, device=data.device)
        self.values = torch.zeros((capacity, n, self.width), dtype=data.dtype, device=data.device)
        self.columns = torch.zeros(
            (capacity, n * self.width, 1), dtype=torch.int64, device=data.device
        )
        self.sub_mask = torch.zeros_like(like)
        self.sub_jacobi = torch.ones_like(like)
        precondition = jacobi_sweeps(self._apply, self.sub_jacobi, sweeps, damping)
        self.solver = method(self._apply, precondition, like, **kw)

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        c, n, k = self.values.shape
        xm = self.sub_mask * x
        gathered = torch.gather(xm, 1, self.columns.expand(-1, -1, x.shape[-1]))
        ax = (gathered.reshape(c, n, k, -1) * self.values.unsqueeze(-1)).sum(dim=2)
        return torch.addcmul(self.sub_mask * ax, 1 - self.sub_mask, x)

    def fits(self, active: torch.Tensor) -> torch.Tensor | None:
        """The indices of the active systems, if there are few enough (else None)."""
        count = int(active.sum())
        if count > self.capacity:
            return None
        return torch.nonzero(active).squeeze(1)

    def solve(self, r: torch.Tensor, rtol: torch.Tensor, systems: torch.Tensor) -> KrylovResult:
        """Correction for ``systems`` (at most ``capacity``) from their residuals ``r``."""
        count, n = len(systems), self.pattern.rows
        take = torch.cat([systems, systems[:1].expand(self.capacity - count)])
        rows = take.unsqueeze(1) * n + torch.arange(n, device=take.device)
        start = self.crow[rows]
        length = self.crow[rows + 1] - start
        slot = torch.arange(self.width, device=take.device)
        valid = slot < length.unsqueeze(-1)
        position = torch.where(valid, start.unsqueeze(-1) + slot, 0)
        self.values.copy_(torch.where(valid, self.data[position], 0))
        local = self.col[position] - (take * n).reshape(-1, 1, 1)
        self.columns.copy_(torch.where(valid, local, 0).reshape(self.capacity, -1, 1))
        self.sub_mask.copy_(self.mask[take])
        self.sub_jacobi.copy_(self.jacobi[take])
        rhs = r[take].to(self.values.dtype)
        rhs[count:] = 0.0  # padding slots repeat a system: give them nothing to do
        sub_rtol = rtol[take]
        result = self.solver.solve(rhs, torch.zeros_like(rhs), sub_rtol)
        return KrylovResult(
            result.x[:count], result.iterations, result.residual[:count], result.per_system[:count]
        )
