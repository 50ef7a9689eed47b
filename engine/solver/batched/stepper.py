"""IPCS on a batch of meshes in torch: the GPU twin of :class:`engine.solver.ipcs.IpcsStepper`.

Same scheme, step by step (BDF1 then BDF2, convection about 2uⁿ − uⁿ⁻¹, pressure increment zero on
the outflow, consistent-mass correction, volume-force residual), with the sparse direct solves
replaced by Krylov solves that run on every trajectory of the batch at once:

- momentum: BiCGStab preconditioned by two damped Jacobi sweeps (plain Jacobi left the
  convection-dominated systems needing 3-6x the median iterations);
- pressure Poisson: CG preconditioned by each mesh's dense inverse (exact in fp64, so one or two
  iterations; fp32 halves its memory for big meshes at the cost of a few more);
- mass correction: CG, Jacobi-preconditioned.

Momentum and mass iterate in fp32 inside an fp64 iterative refinement, so they meet the fp64
tolerances at half the memory traffic; on CUDA the iterations replay as CUDA graphs, and in big
batches the last unconverged momentum systems finish in a small batch of their own (see
:mod:`engine.solver.batched.linalg`).

Convection is assembled from the precomputed element tensor by one batched matmul and a scatter
into the fixed CSR data, so no sparse structure is built per step. Dirichlet dofs are eliminated
symmetrically (masked operators), which has the same solution as the CPU's identity rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from engine.boundary import ramp
from engine.forces import coefficients, drag_lift
from engine.solver.batched.linalg import (
    BatchedMatrix,
    BatchedPattern,
    BiCGStab,
    ConjugateGradient,
    DenseInverse,
    Krylov,
    KrylovResult,
    Operator,
    Refined,
    Stragglers,
    jacobi_sweeps,
    relative_residual,
)
from engine.solver.batched.prepare import PreparedFlow

InflowScale = Callable[[float], float]


@dataclass(frozen=True)
class BatchSettings:
    """Tolerances of the batched solves: the CPU solver's own (``engine/solver/ipcs.py``).

    The CPU solves momentum by GMRES to 1e-8 and the mass correction by CG to 1e-10; pressure is
    exact there and one dense-inverse application here. Momentum is most of the batched cost
    (its BiCGStab takes the most iterations), so it gets the CPU's looser tolerance, not 1e-10.
    """

    rtol: float = 1e-10
    momentum_rtol: float = 1e-8
    max_iterations: int = 400
    cuda_graphs: bool = True  # replay Krylov iterations as CUDA graphs (see linalg.Krylov)
    # Precision of the momentum and mass Krylov iterations; below fp64 they are corrections
    # inside an fp64 iterative refinement (linalg.Refined) that meets the same tolerances.
    krylov_dtype: torch.dtype = torch.float32
    inner_rtol_floor: float = 1e-5  # the smallest reduction asked of one fp32 solve
    # Momentum systems still unconverged once this share of the batch is left are finished
    # in a small batch of their own (linalg.Stragglers); 0 turns that off. Measured on an
    # H200 (2k nodes, frames 10-30): batch 256 135 -> 125 ms a frame, batch 64 47.8 -> 48.9,
    # so only batches of at least straggler_min_batch do it.
    straggler_share: float = 0.125
    straggler_min_batch: int = 128
    # Momentum preconditioner: this many damped Jacobi sweeps (linalg.jacobi_sweeps).
    momentum_jacobi_sweeps: int = 2
    jacobi_damping: float = 0.8
    # The Poisson inverse's precision; None: fp64 (a direct solve) up to this many pressure
    # dofs, fp32 (a CG preconditioner, half the memory) above.
    pressure_inverse_dtype: torch.dtype | None = None
    fp64_inverse_max_dofs: int = 8000
    # A momentum or mass solve ending above this many times its tolerance is redone for that
    # system by a sparse LU on the host (as the CPU solver falls back to LU), at most
    # direct_solves_per_trajectory times per trajectory; past that budget, or if the LU
    # cannot help either (a state no longer finite), the trajectory fails.
    failure_factor: float = 100.0
    direct_solves_per_trajectory: int = 32

    def inverse_dtype(self, pressure_dofs: int) -> torch.dtype:
        if self.pressure_inverse_dtype is not None:
            return self.pressure_inverse_dtype
        return torch.float64 if pressure_dofs <= self.fp64_inverse_max_dofs else torch.float32


def stack_csr(
    matrices: Sequence[sp.csr_matrix],
    rows: int,
    cols: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> BatchedMatrix:
    """Block-diagonal stack of CSR matrices, each padded to ``rows`` x ``cols``."""
    crows, columns, data = [], [], []
    offset = 0
    for b, m in enumerate(matrices):
        m = m.tocsr()
        m.sort_indices()
        indptr = np.concatenate([m.indptr, np.full(rows - m.shape[0], m.indptr[-1])])
        crows.append(indptr[:-1] + offset)
        columns.append(m.indices.astype(np.int64) + b * cols)
        data.append(m.data)
        offset += m.nnz
    pattern = BatchedPattern(
        rows=rows,
        cols=cols,
        batch=len(matrices),
        crow=torch.as_tensor(np.concatenate([*crows, [offset]]).astype(np.int64), device=device),
        col=torch.as_tensor(np.concatenate(columns), device=device),
        offsets=np.zeros(0, dtype=np.int64),
        scatter=torch.zeros(0, dtype=torch.int64, device=device),
    )
    return pattern.matrix(torch.as_tensor(np.concatenate(data), dtype=dtype, device=device))


def _masked(apply: Operator, mask: torch.Tensor) -> Operator:
    """P A P + (I − P): the operator on free dofs, identity on fixed and padding dofs."""
    fixed = 1 - mask
    return lambda x: torch.addcmul(mask * apply(mask * x), fixed, x)


def _stacked(
    arrays: Sequence[np.ndarray], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``np.concatenate(arrays)`` as a tensor on ``device``, copied there one array at a time.

    The convection tensors of a batch of 256 2k-vertex flows are ~4 GB: concatenating them on
    the host first costs seconds of page faults and copying (0.86 GB took 5 s on a 2-core VM)
    before the same bytes cross to the GPU anyway.
    """
    out = torch.empty(
        (sum(len(a) for a in arrays), *arrays[0].shape[1:]), dtype=dtype, device=device
    )
    start = 0
    for a in arrays:
        out[start : start + len(a)].copy_(torch.from_numpy(np.ascontiguousarray(a)))
        start += len(a)
    return out


def _padded(arrays: Sequence[np.ndarray], width: int, fill: float | bool = 0) -> np.ndarray:
    shape = (len(arrays), width, *arrays[0].shape[1:])
    out = np.full(shape, fill, dtype=np.result_type(arrays[0], type(fill)))
    for b, a in enumerate(arrays):
        out[b, : len(a)] = a
    return out


class _VelocitySolve:
    """A masked solve on the velocity pattern whose matrix data and Jacobi inverse diagonal
    live in fp64 buffers (updated in place by the stepper).

    With ``settings.krylov_dtype`` fp32 the Krylov iterations run on fp32 copies of both
    (made here, and again by :meth:`refresh` whenever the owner changes the buffers) inside a
    :class:`Refined` fp64 solve (half the bytes per iteration); with fp64 they run on the
    buffers themselves.
    """

    def __init__(
        self,
        method: type[Krylov],
        pattern: BatchedPattern,
        data: torch.Tensor,
        jacobi: torch.Tensor,
        mask: torch.Tensor,
        rtol: float,
        settings: BatchSettings,
        direct_solves: np.ndarray,
        stragglers: bool = False,
        sweeps: int = 1,
    ) -> None:
        kw = {"max_iterations": settings.max_iterations, "cuda_graph": settings.cuda_graphs}
        damping = settings.jacobi_damping
        high = _masked(pattern.matrix(data).__matmul__, mask)
        self.apply, self.jacobi = high, jacobi
        self.pattern, self.data, self.mask = pattern, data, mask
        self.rtol, self.settings = rtol, settings
        # Host LU solves per trajectory (see _direct), shared by its solves: one budget each.
        self.direct_solves = direct_solves
        low = settings.krylov_dtype
        if low == data.dtype:
            self.copies: list[tuple[torch.Tensor, torch.Tensor]] = []
            precondition = jacobi_sweeps(high, jacobi, sweeps, damping)
            self.solver: Krylov | Refined = method(high, precondition, jacobi, rtol=rtol, **kw)
            return
        data_low, jacobi_low, mask_low = data.to(low), jacobi.to(low), mask.to(low)
        self.copies = [(data_low, data), (jacobi_low, jacobi)]
        apply_low = _masked(pattern.matrix(data_low).__matmul__, mask_low)
        precondition = jacobi_sweeps(apply_low, jacobi_low, sweeps, damping)
        inner = method(apply_low, precondition, jacobi_low, rtol=rtol, **kw)
        capacity = math.ceil(settings.straggler_share * pattern.batch)
        few = None
        if stragglers and pattern.batch >= settings.straggler_min_batch and capacity > 0:
            few = Stragglers(
                method,
                pattern,
                data_low,
                mask_low,
                jacobi_low,
                capacity,
                sweeps=sweeps,
                damping=damping,
                rtol=rtol,
                **kw,
            )
        self.solver = Refined(
            high, inner, rtol=rtol, inner_floor=settings.inner_rtol_floor, stragglers=few
        )

    def refresh(self) -> None:
        """Bring the low-precision copies up to date with the fp64 buffers."""
        for low, high in self.copies:
            low.copy_(high)

    def solve(self, b: torch.Tensor, x0: torch.Tensor) -> KrylovResult:
        result = self.solver.solve(b, x0)
        failed = ~(result.residual <= self.settings.failure_factor * self.rtol)
        if not bool(failed.any()):
            return result
        systems = torch.nonzero(failed).squeeze(1).cpu().numpy()
        budget = self.settings.direct_solves_per_trajectory
        return self._direct(b, result, systems[self.direct_solves[systems] < budget])

    def _direct(self, b: torch.Tensor, result: KrylovResult, systems: np.ndarray) -> KrylovResult:
        """``result`` with ``systems`` solved again by a sparse LU on the host, in fp64.

        The CPU solver never gives up on a linear solve: its GMRES falls back to a fresh LU, its
        CG to the mass matrix's. The fp32 iterations here can fail where that LU would not (a
        BiCGStab breakdown; a stagnating solve near a local spike: seed 0 #669 failed a
        solve at step 242 without this, where the CPU solver went on to step 459). An LU of
        one 2k-vertex P2 system takes 30-110 ms, cheap for a rare event, so the trajectory is
        not lost to the solver.
        """
        x, n, width = result.x.clone(), self.pattern.rows, self.pattern.cols
        crow = self.pattern.crow
        for s in systems:
            rhs = b[s].cpu().numpy()
            if not np.isfinite(rhs).all():
                continue  # a blow-up: no solve helps, the trajectory fails
            lo, hi = (int(o) for o in self.pattern.offsets[s : s + 2])
            indptr = crow[s * n : (s + 1) * n + 1].cpu().numpy().astype(np.int64) - lo
            columns = self.pattern.col[lo:hi].cpu().numpy().astype(np.int64) - s * width
            matrix = sp.csr_matrix((self.data[lo:hi].cpu().numpy(), columns, indptr), (n, width))
            mask = self.mask[s].cpu().numpy()
            out = np.empty_like(rhs)
            for c in range(rhs.shape[-1]):  # Dirichlet dofs differ per velocity component
                free = sp.diags(mask[:, c])
                masked = free @ matrix @ free + sp.diags(1.0 - mask[:, c])
                out[:, c] = spla.splu(masked.tocsc()).solve(rhs[:, c])
            x[s] = torch.from_numpy(out).to(x.device)
            self.direct_solves[s] += 1
        residual = relative_residual(b - self.apply(x), b)
        return KrylovResult(x, result.iterations, residual, result.per_system)

    def jacobi_step(self, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x`` improved by one Jacobi step on A x = b (fp64): a cheap better initial guess."""
        return x + self.jacobi * (b - self.apply(x))


class BatchedIpcs:
    """State and operators of B trajectories on B meshes, advanced together."""

    def __init__(
        self,
        flows: Sequence[PreparedFlow],
        device: torch.device | str = "cpu",
        settings: BatchSettings | None = None,
        inflow_scales: Sequence[InflowScale | None] | None = None,
    ) -> None:
        if not flows:
            raise ValueError("a batch needs at least one flow")
        self.flows = list(flows)
        self.settings = settings or BatchSettings()
        self.device = torch.device(device)
        self.inflow_scales = list(inflow_scales or [None] * len(flows))
        f64, dev = torch.float64, self.device
        batch = len(flows)
        n2 = max(f.num_velocity_dofs for f in flows)
        n1 = max(f.num_pressure_dofs for f in flows)
        self.batch, self.n2, self.n1 = batch, n2, n1

        self.vv = BatchedPattern.stack([f.vv for f in flows], n2, n2, dev)
        dt = np.array([f.dt for f in flows])
        nu = np.array([f.scenario.fluid.viscosity for f in flows])
        self.dt = torch.as_tensor(dt, dtype=f64, device=dev).reshape(-1, 1, 1)
        self.mass_data = self.vv.data([f.mass for f in flows], f64)
        self.mass_over_dt = self.vv.data([f.mass / f.dt for f in flows], f64)
        self.viscous = self.vv.data([f.stiffness * n for f, n in zip(flows, nu, strict=True)], f64)
        self.M = self.vv.matrix(self.mass_data)
        self.tensor = _stacked([f.convection_tensor for f in flows], f64, dev)
        self.element_dofs = torch.as_tensor(
            np.concatenate([f.element_dofs + b * n2 for b, f in enumerate(flows)]), device=dev
        )
        diag = [f.vv.diagonal_positions() + self.vv.offsets[b] for b, f in enumerate(flows)]
        self._diag_rows = torch.as_tensor(
            np.concatenate([np.arange(len(d)) + b * n2 for b, d in enumerate(diag)]), device=dev
        )
        self._diag_pos = torch.as_tensor(np.concatenate(diag), device=dev)

        def stack(mats: Sequence[sp.csr_matrix], rows: int, cols: int) -> BatchedMatrix:
            return stack_csr(mats, rows, cols, f64, dev)

        self.B = [stack([f.divergence[d] for f in flows], n1, n2) for d in (0, 1)]
        self.BT = [stack([f.divergence_t[d] for f in flows], n2, n1) for d in (0, 1)]
        self.G = [stack([f.gradient[d] for f in flows], n2, n1) for d in (0, 1)]
        laplacian = stack([f.pressure_laplacian for f in flows], n1, n1)

        vmask = _padded([~f.velocity_fixed for f in flows], n2, False)
        self.vmask = torch.as_tensor(vmask, dtype=f64, device=dev)
        self.full_inflow = torch.as_tensor(
            _padded([f.velocity_full_inflow for f in flows], n2), dtype=f64, device=dev
        )
        pmask = np.zeros((batch, n1))
        for b, f in enumerate(flows):
            pmask[b, : f.num_pressure_dofs] = 1.0
            pmask[b, f.outflow_pressure_dofs] = 0.0
        self.pmask = torch.as_tensor(pmask, dtype=f64, device=dev)
        poisson = _masked(laplacian.__matmul__, self.pmask)
        started = time.perf_counter()
        poisson_inverse = DenseInverse(
            [f.condensed_laplacian() for f in flows], n1, self.settings.inverse_dtype(n1), dev
        )
        # Set-up cost of the batch's biggest piece (the factorisations end in a device sync).
        self.inverse_seconds = time.perf_counter() - started
        self._pressure = ConjugateGradient(
            poisson,
            poisson_inverse,
            self.pmask,
            rtol=self.settings.rtol,
            max_iterations=self.settings.max_iterations,
            check_every=1,
            cuda_graph=self.settings.cuda_graphs,
        )
        # Momentum: the matrix and its Jacobi diagonal change every step, in place, so the
        # solver (and its CUDA graph) built here reads the current ones.
        self._lhs_data = torch.zeros_like(self.mass_data)
        self._lhs = self.vv.matrix(self._lhs_data)
        self._momentum_jacobi = torch.ones((batch, n2, 2), dtype=f64, device=dev)
        self._jacobi_gamma: float | None = None  # the γ _momentum_jacobi was set for
        self._direct_solves = np.zeros(batch, dtype=np.int64)
        self._momentum = _VelocitySolve(
            BiCGStab,
            self.vv,
            self._lhs_data,
            self._momentum_jacobi,
            self.vmask,
            self.settings.momentum_rtol,
            self.settings,
            self._direct_solves,
            stragglers=True,
            sweeps=self.settings.momentum_jacobi_sweeps,
        )
        mass_jacobi = torch.ones_like(self._momentum_jacobi)
        self._set_jacobi(mass_jacobi, self.mass_data)
        self._mass = _VelocitySolve(
            ConjugateGradient,
            self.vv,
            self.mass_data,
            mass_jacobi,
            self.vmask,
            self.settings.rtol,
            self.settings,
            self._direct_solves,
        )

        # Force functional: per obstacle, the sum of residual rows over its surface dofs.
        self.num_obstacles = max(len(f.obstacle_dofs) for f in flows)
        rows, cols = [], []
        for b, f in enumerate(flows):
            for i, dofs in enumerate(f.obstacle_dofs):
                rows.append(np.full(len(dofs), b * self.num_obstacles + i))
                cols.append(dofs + b * n2)
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        surface = sp.csr_matrix(
            (np.ones(len(r)), (r, c)), shape=(batch * self.num_obstacles, batch * n2)
        )
        self._surface = stack_csr([surface], batch * self.num_obstacles, batch * n2, f64, dev)

        n_vertices = max(f.mesh.num_nodes for f in flows)
        self.vertex_dofs = torch.as_tensor(
            _padded([f.vertex_dofs for f in flows], n_vertices), device=dev
        )
        self.pressure_vertex_dofs = torch.as_tensor(
            _padded([f.pressure_vertex_dofs for f in flows], n_vertices), device=dev
        )
        self.density = torch.as_tensor(
            [f.scenario.fluid.density for f in flows], dtype=f64, device=dev
        ).reshape(-1, 1)
        self.u = torch.zeros((batch, n2, 2), dtype=f64, device=dev)
        self.u_prev: torch.Tensor | None = None
        self.tentatives: tuple[torch.Tensor, ...] = ()  # the last (up to) two momentum solutions
        self.p = torch.zeros((batch, n1), dtype=f64, device=dev)
        self.steps_taken = 0
        self.last_residual = torch.zeros_like(self.u)
        # Krylov iterations summed over sub-steps: the batch's (its cost, set by its slowest
        # system) and each system's own (what it needed; their spread is the batching loss).
        self.iterations = {"momentum": 0, "pressure": 0, "mass": 0}
        # Systems whose solve ended far above its tolerance (see _record): their trajectory is
        # no longer the CPU solver's, so BatchRun fails it.
        self.unconverged = torch.zeros(batch, dtype=torch.bool, device=dev)
        self.frozen = np.zeros(batch, dtype=bool)  # failed systems, see freeze()
        self._host_fields: torch.Tensor | None = None  # see vertex_fields()
        self.system_iterations = {
            k: torch.zeros(batch, dtype=torch.int64, device=dev) for k in self.iterations
        }

    # ---- pieces ---------------------------------------------------------------------------
    def _set_jacobi(self, out: torch.Tensor, data: torch.Tensor) -> None:
        """Write the inverse diagonal of the vv matrix with ``data`` into ``out`` [B, n2, 2]
        (one on fixed and padding dofs)."""
        diag = torch.ones(self.batch * self.n2, dtype=data.dtype, device=self.device)
        diag[self._diag_rows] = data[self._diag_pos]
        out.copy_(torch.where(self.vmask > 0, 1.0 / diag.reshape(self.batch, self.n2, 1), 1.0))

    def convection(self, w: torch.Tensor) -> torch.Tensor:
        """vv data of N(w) for velocities w [B, n2, 2] (the CPU's FlowSpaces.convection)."""
        w_local = w.reshape(-1, 2)[self.element_dofs].reshape(len(self.element_dofs), -1, 1)
        return self.vv.assemble_local(torch.bmm(self.tensor, w_local))

    def boundary_values(self, time: np.ndarray) -> torch.Tensor:
        """Prescribed velocities [B, n2, 2] (zero off the Dirichlet dofs) at per-system times."""
        factor = np.array(
            [
                ramp(f.scenario, t) * (1.0 if s is None else s(t))
                for f, s, t in zip(self.flows, self.inflow_scales, time, strict=True)
            ]
        )
        factor[self.frozen] = 0.0
        scale = torch.as_tensor(factor, dtype=self.full_inflow.dtype, device=self.device)
        return scale.reshape(-1, 1, 1) * self.full_inflow

    def freeze(self, systems: Sequence[int]) -> None:
        """Stop advancing ``systems`` (failed trajectories): their state and their boundary
        values are zero from now on, so every solve finds them converged from the start and
        they cost the rest of the batch no iterations. (Restarting them from rest instead, as
        was done before, left an impulsive start, then often a second blow-up, to solve: on the
        CPU, seed 0 #853 + #817 paid 227 momentum and 16 mass iterations per sub-step after
        #853 failed, against 30 and 12 frozen.)"""
        self.frozen[list(systems)] = True
        idx = torch.as_tensor(list(systems), device=self.device)
        for state in (self.u, self.u_prev, self.p, *self.tentatives):
            if state is not None:
                state[idx] = 0.0
        self.unconverged[idx] = False

    def _pair(self, ops: list[BatchedMatrix], x: torch.Tensor) -> torch.Tensor:
        return torch.stack([ops[0] @ x, ops[1] @ x], dim=-1)

    @property
    def time(self) -> np.ndarray:
        return self.steps_taken * np.array([f.dt for f in self.flows])

    def iterations_per_substep(self) -> tuple[dict[str, float], np.ndarray]:
        """Mean Krylov iterations per sub-step so far: the batch's by solve, and [B] momentum
        iterations each system needed (the batch paid its slowest system's)."""
        substeps = max(self.steps_taken, 1)
        batch = {k: v / substeps for k, v in self.iterations.items()}
        return batch, self.system_iterations["momentum"].cpu().numpy() / substeps

    def _record(self, solve: str, result: KrylovResult) -> None:
        self.iterations[solve] += result.iterations
        self.system_iterations[solve] += result.per_system
        rtol = self.settings.momentum_rtol if solve == "momentum" else self.settings.rtol
        self.unconverged |= ~(result.residual <= self.settings.failure_factor * rtol)

    # ---- one step -----------------------------------------------------------------------------
    def step(self) -> None:
        """Advance every trajectory by its own internal dt (BDF1 on the first step, BDF2 after)."""
        dt = self.dt
        bdf2 = self.u_prev is not None
        gamma = 1.5 if bdf2 else 1.0
        if self.u_prev is not None:
            history = (4.0 * self.u - self.u_prev) / (2.0 * dt)
            w = 2.0 * self.u - self.u_prev
        else:
            history, w = self.u / dt, self.u
        operator = self.viscous + self.convection(w)
        fixed = self.boundary_values(self.time + np.array([f.dt for f in self.flows]))
        mask = self.vmask

        # (1) tentative velocity
        self._lhs_data.copy_(operator + gamma * self.mass_over_dt)
        # Jacobi from the diagonal of the symmetric part (γM/dt + νK), always positive. The
        # convection term's own diagonal is not: where the local velocity is high it can cancel
        # the rest (seed 0 #519 at frame 125: smallest diagonal -1.1e-4 against 1.6e-3), and
        # 1/diag then wrecks the preconditioner (fp32 BiCGStab stalled, then blew up). On that
        # system, scipy BiCGStab with two sweeps to 1e-8: 54 iterations with the full diagonal,
        # 27 with this one; 27-28 either way on ordinary ones.
        # It changes only with γ (BDF1, then BDF2), so it is set on those two steps only.
        if gamma != self._jacobi_gamma:
            self._set_jacobi(self._momentum_jacobi, self.viscous + gamma * self.mass_over_dt)
            self._jacobi_gamma = gamma
        self._momentum.refresh()
        rhs = self.M @ history + self._pair(self.BT, self.p)
        # Initial guess: the tentative velocity extrapolated from the last two (what this solve
        # returns; ~10 % fewer iterations than starting from w, measured at Re 150-280).
        guess = w if len(self.tentatives) < 2 else 2.0 * self.tentatives[1] - self.tentatives[0]
        result = self._momentum.solve(
            mask * (rhs - self._lhs @ fixed) + fixed, mask * guess + fixed
        )
        tentative = result.x
        self.tentatives = (*self.tentatives[-1:], tentative)
        self._record("momentum", result)

        # (2) pressure increment, zero on the outflow
        div = self.B[0] @ tentative[..., 0] + self.B[1] @ tentative[..., 1]
        rhs_p = -(gamma / dt.reshape(-1, 1)) * div * self.pmask
        result = self._pressure.solve(rhs_p, torch.zeros_like(rhs_p))
        phi = result.x
        self._record("pressure", result)

        # (3) velocity correction with the consistent mass matrix
        rhs = self.M @ tentative - (dt / gamma) * self._pair(self.G, phi)
        rhs = mask * (rhs - self.M @ fixed) + fixed
        # From the tentative velocity plus one Jacobi step: the P2 mass matrix is well
        # conditioned, so that step already takes most of the gradient correction (CPU, seed 0
        # #0 at Re 281, frames 50-150: CG iterations per sub-step 11.0 -> 8.0, same results).
        result = self._mass.solve(rhs, self._mass.jacobi_step(rhs, tentative))
        new = result.x
        self._record("mass", result)
        p_new = self.p + phi

        # Momentum residual with every test function free: its obstacle rows are the forces.
        op = self.vv.matrix(operator)
        self.last_residual = (
            self.M @ ((gamma * new - dt * history) / dt) + op @ new - self._pair(self.BT, p_new)
        )
        self.u_prev, self.u, self.p = self.u, new, p_new
        self.steps_taken += 1

    # ---- output -------------------------------------------------------------------------------
    def vertex_fields(self, dtype: torch.dtype = torch.float64) -> np.ndarray:
        """[B, N_max, 3] of (u, v, p in Pa) at the vertices; rows past a mesh's N are filler.

        On a GPU the array is a reused page-locked buffer, overwritten by the next call (copy
        what you keep); cast to ``dtype`` on the device first, so fp32 output (the dataset
        files) copies half the bytes back every frame.
        """
        u = torch.gather(self.u, 1, self.vertex_dofs.unsqueeze(-1).expand(-1, -1, 2))
        p = self.density * torch.gather(self.p, 1, self.pressure_vertex_dofs)
        fields = torch.cat([u, p.unsqueeze(-1)], dim=-1).to(dtype)
        if self.device.type != "cuda":
            return fields.numpy()
        if self._host_fields is None or self._host_fields.dtype != dtype:
            self._host_fields = torch.empty(fields.shape, dtype=dtype, pin_memory=True)
        self._host_fields.copy_(fields)
        return self._host_fields.numpy()

    def forces(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per trajectory: (forces, coefficients) [n_obstacles, 2] from the last residual."""
        sums = (self._surface @ self.last_residual.reshape(1, -1, 2)).reshape(
            self.batch, self.num_obstacles, 2
        )
        sums = sums.cpu().numpy()
        out = []
        for b, f in enumerate(self.flows):
            k = len(f.obstacle_dofs)
            rho = f.scenario.fluid.density
            forces = drag_lift(f.scenario, -rho * sums[b, :k, 0], -rho * sums[b, :k, 1])
            forces = forces.reshape(-1, 2)
            out.append((forces, coefficients(f.scenario, forces)))
        return out

    @property
    def direct_solves(self) -> int:
        """Momentum and mass solves redone by host LU so far (see _VelocitySolve._direct)."""
        return int(self._direct_solves.sum())

    def health(self) -> tuple[np.ndarray, np.ndarray]:
        """Per trajectory: the largest |u| or |v| (inf where the state is not finite) and
        whether a solve ended unconverged, in one copy from the device (one sync a frame)."""
        peak = self.u.abs().amax(dim=(1, 2))
        finite = torch.isfinite(self.u).all(dim=(1, 2)) & torch.isfinite(self.p).all(dim=1)
        peak = torch.where(finite, peak, torch.inf)
        both = torch.stack([peak, self.unconverged.to(peak.dtype)]).cpu().numpy()
        return both[0], both[1] > 0
