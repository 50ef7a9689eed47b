"""The reference Navier–Stokes solver (P2–P1 finite elements, scikit-fem) that makes ground truth.

See docs/solver.md for the method, its validation on the DFG benchmark and its cost.
"""

from engine.solver.ipcs import SolverConfig
from engine.solver.steady import steady_state
from engine.solver.transient import solve

__all__ = ["SolverConfig", "solve", "steady_state"]
