"""The reference solver batched in torch: many meshes stepped together on a GPU (or the CPU).

The CPU prepares each trajectory once (:func:`prepare_flow`: gmsh + the CPU solver's own
assembly); :class:`BatchRun` then advances a batch of them with the same IPCS scheme.
"""

from engine.solver.batched.prepare import PreparedFlow, prepare_flow
from engine.solver.batched.run import BatchRun
from engine.solver.batched.stepper import BatchedIpcs, BatchSettings

__all__ = ["BatchRun", "BatchSettings", "BatchedIpcs", "PreparedFlow", "prepare_flow"]
