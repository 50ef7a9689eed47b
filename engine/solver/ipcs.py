"""Transient solver: incremental pressure correction (IPCS) on P2–P1 Taylor–Hood elements.

Each step: (1) a momentum solve for a tentative velocity with BDF2 in time, convection
linearised about the extrapolated velocity 2uⁿ − uⁿ⁻¹ (semi-implicit: stable at CFL ~1 where
explicit convection needed 10× smaller steps), the old pressure and the viscous term implicit;
(2) a pressure-increment Poisson solve, zero on the outflow (the do-nothing boundary);
(3) a velocity correction with the consistent mass matrix. The Poisson and mass matrices are
factorised once; only the momentum matrix changes, through its convection part.

Dirichlet conditions replace matrix rows by identity rows, which keeps every matrix on its fixed
element pattern (no per-step slicing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from engine.errors import ConfigError, DivergenceError
from engine.scenario import Scenario
from engine.solver.boundary_conditions import InflowScale, VelocityConditions
from engine.solver.spaces import ElementPattern, FlowSpaces


@dataclass(frozen=True)
class SolverConfig:
    """Numerical settings of the transient solver."""

    max_cfl: float = 1.5  # internal step: peak inflow speed × dt / obstacle mesh size ≤ this
    max_dt: float | None = None  # optional further cap on the internal step [s]
    blowup_factor: float = 50.0  # |u| beyond this × peak inflow speed counts as divergence

    def __post_init__(self) -> None:
        # Every command that runs the solver takes the cap as --max-dt; this is its one check.
        if self.max_dt is not None and not self.max_dt > 0:
            raise ConfigError(f"--max-dt must be a positive number of seconds, got {self.max_dt}")


def peak_inflow_speed(scenario: Scenario) -> float:
    factor = 1.5 if scenario.inflow.profile == "parabolic" else 1.0
    return factor * scenario.inflow.mean_speed


def substeps_per_frame(scenario: Scenario, config: SolverConfig) -> int:
    """Internal steps per output dt, so that the convective CFL stays below ``max_cfl``."""
    dt = scenario.time.dt
    cfl = peak_inflow_speed(scenario) * dt / scenario.mesh.obstacle_size
    n = max(1, math.ceil(cfl / config.max_cfl - 1e-9))
    if config.max_dt is not None:
        n = max(n, math.ceil(dt / config.max_dt - 1e-9))
    return n


class _RowReplaced:
    """A square pattern whose Dirichlet rows are turned into identity rows."""

    def __init__(self, pattern: ElementPattern, dofs: np.ndarray) -> None:
        self.pattern = pattern
        rows = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr))
        in_rows = np.isin(rows, dofs)
        self.clear = np.flatnonzero(in_rows)
        diag = pattern.diagonal_positions()
        self.ones = diag[dofs]

    def matrix(self, data: np.ndarray) -> sp.csr_matrix:
        data = data.copy()
        data[self.clear] = 0.0
        data[self.ones] = 1.0
        return self.pattern.matrix(data)

    def factorise(self, data: np.ndarray) -> spla.SuperLU:
        return spla.splu(self.matrix(data).tocsc())


class _LaggedLU:
    """Solves a slowly changing matrix by GMRES preconditioned with an older LU factorisation.

    Factorising the momentum matrix costs ~15× one solve with its factors; the convection part
    changes little per step, so an LU a few steps old makes GMRES converge in 2–4 iterations.
    It is refreshed once GMRES needs more than ``max_iterations``.
    """

    max_iterations = 6

    def __init__(self) -> None:
        self.lu: spla.SuperLU | None = None
        self.factorisations = 0

    def invalidate(self) -> None:
        self.lu = None

    def solve(self, matrix: sp.csr_matrix, rhs: np.ndarray, x0: np.ndarray) -> np.ndarray:
        if self.lu is None:
            return self._refactorise(matrix, rhs)
        lu = self.lu
        preconditioner = spla.LinearOperator(matrix.shape, matvec=lu.solve, dtype=np.float64)
        iterations = 0

        def count(_: float) -> None:
            nonlocal iterations
            iterations += 1

        x, info = spla.gmres(
            matrix,
            rhs,
            x0=x0,
            M=preconditioner,
            rtol=1e-8,
            atol=0.0,
            restart=20,
            maxiter=1,
            callback=count,
            callback_type="pr_norm",
        )
        if info != 0:
            return self._refactorise(matrix, rhs)
        if iterations > self.max_iterations:
            self.lu = None
        return x

    def _refactorise(self, matrix: sp.csr_matrix, rhs: np.ndarray) -> np.ndarray:
        self.lu = spla.splu(matrix.tocsc())
        self.factorisations += 1
        return self.lu.solve(rhs)


class _MassSolver:
    """Solves M x = b on the free dofs (x = 0 on Dirichlet dofs) by Jacobi-preconditioned CG.

    The P2 mass matrix is well conditioned once diagonally scaled, so CG converges in a few
    dozen cheap matrix-vector products, several times faster than a solve with its LU factors
    (kept as a fallback, factorised only if CG ever stalls).
    """

    def __init__(self, mass: sp.csr_matrix, fixed: np.ndarray) -> None:
        self.free = np.setdiff1d(np.arange(mass.shape[0]), fixed)
        self.matrix = mass[self.free][:, self.free].tocsr()
        inverse_diagonal = 1.0 / self.matrix.diagonal()
        self.preconditioner = spla.LinearOperator(
            self.matrix.shape, matvec=lambda v: inverse_diagonal * v, dtype=np.float64
        )
        self._lu: spla.SuperLU | None = None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        x = np.zeros_like(rhs)
        free, info = spla.cg(self.matrix, rhs[self.free], M=self.preconditioner, rtol=1e-10)
        if info != 0:
            if self._lu is None:
                self._lu = spla.splu(self.matrix.tocsc())
            free = self._lu.solve(rhs[self.free])
        x[self.free] = free
        return x


class IpcsStepper:
    """Holds the state (u, v at P2 dofs, kinematic p at P1 dofs) and advances it by ``dt``."""

    def __init__(
        self,
        spaces: FlowSpaces,
        scenario: Scenario,
        dt: float,
        *,
        inflow_scale: InflowScale | None = None,
    ) -> None:
        self.spaces, self.scenario, self.dt = spaces, scenario, dt
        self.nu = scenario.fluid.viscosity
        self.bc = VelocityConditions(scenario, spaces, inflow_scale)
        s = spaces
        self.M = s.vv.matrix(s.mass)
        self.B = [s.pv.matrix(d) for d in s.divergence]
        self.BT = [b.T.tocsr() for b in self.B]
        self.G = [s.vp.matrix(d) for d in s.gradient]
        self._momentum_rows = [_RowReplaced(s.vv, d) for d in self.bc.dofs]
        self._same_dofs = np.array_equal(self.bc.dofs[0], self.bc.dofs[1])
        self._momentum_solvers = [_LaggedLU(), _LaggedLU()]
        self._gamma = 0.0
        outflow = s.boundary_pressure_dofs["outflow"]
        self._poisson = _RowReplaced(s.pp, outflow).factorise(s.pressure_laplacian)
        self._outflow_p = outflow
        self._correction = [_MassSolver(self.M, d) for d in self.bc.dofs]
        n2, n1 = s.num_velocity_dofs, s.num_pressure_dofs
        self.u = [np.zeros(n2), np.zeros(n2)]
        self.u_prev: list[np.ndarray] | None = None
        self.p = np.zeros(n1)
        self.time = 0.0
        self._residual_operator = s.stiffness * self.nu  # νK data; convection added per step
        self.last_residual: list[np.ndarray] = [np.zeros(n2), np.zeros(n2)]

    def step(self) -> None:
        """Advance one internal step (BDF1 on the first, BDF2 after)."""
        s, dt = self.spaces, self.dt
        t_new = self.time + dt
        bdf2 = self.u_prev is not None
        gamma = 1.5 if bdf2 else 1.0
        if bdf2:
            history = [(4.0 * a - b) / (2.0 * dt) for a, b in zip(self.u, self.u_prev, strict=True)]
            w = [2.0 * a - b for a, b in zip(self.u, self.u_prev, strict=True)]
        else:
            history = [a / dt for a in self.u]
            w = self.u
        operator = self._residual_operator + s.convection(w[0], w[1])
        values = self.bc.values(t_new)
        # (1) tentative velocity
        lhs = operator + (gamma / dt) * s.mass
        if gamma != self._gamma:  # BDF1 -> BDF2: the old factors no longer fit
            self._gamma = gamma
            for solver in self._momentum_solvers:
                solver.invalidate()
        tentative = []
        matrices = [self._momentum_rows[0].matrix(lhs)]
        matrices.append(matrices[0] if self._same_dofs else self._momentum_rows[1].matrix(lhs))
        for c in (0, 1):
            rhs = self.M @ history[c] + self.BT[c] @ self.p
            rhs[self.bc.dofs[c]] = values[c]
            solver = self._momentum_solvers[0 if self._same_dofs else c]
            tentative.append(solver.solve(matrices[c], rhs, w[c]))
        # (2) pressure increment
        div = self.B[0] @ tentative[0] + self.B[1] @ tentative[1]
        rhs = -(gamma / dt) * div
        rhs[self._outflow_p] = 0.0
        phi = self._poisson.solve(rhs)
        # (3) correction
        new = []
        for c in (0, 1):
            corrected = tentative[c] + self._correction[c].solve(-(dt / gamma) * (self.G[c] @ phi))
            corrected[self.bc.dofs[c]] = values[c]
            new.append(corrected)
        p_new = self.p + phi
        # Momentum residual of the new state with test functions left free on every dof: its
        # rows on an obstacle's surface dofs are the (negative) force on that obstacle.
        op = s.vv.matrix(operator)
        self.last_residual = [
            self.M @ ((gamma * new[c] - dt * history[c]) / dt) + op @ new[c] - self.BT[c] @ p_new
            for c in (0, 1)
        ]
        self.u_prev, self.u, self.p, self.time = self.u, new, p_new, t_new

    def check(self, step: int, limit: float) -> None:
        peak = max(float(np.max(np.abs(self.u[0]))), float(np.max(np.abs(self.u[1]))))
        if not math.isfinite(peak) or not np.all(np.isfinite(self.p)):
            raise DivergenceError(step, "the velocity or pressure became NaN/inf")
        if peak > limit:
            raise DivergenceError(
                step, f"velocity reached {peak:.3g} m/s, far above the inflow (limit {limit:.3g})"
            )
