"""``BatchRun``: frames of many trajectories at once, like :func:`engine.solver.solve` for one."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from engine.errors import DivergenceError
from engine.frame import Frame
from engine.solver.batched.prepare import PreparedFlow
from engine.solver.batched.stepper import BatchedIpcs, BatchSettings, InflowScale


class BatchRun:
    """Advance prepared flows together and yield, per output step, one Frame per trajectory.

    Every flow of a batch must take the same number of internal steps per frame (their dt may
    differ); the data generator groups scenarios accordingly. A trajectory that blows up is
    recorded in ``failures`` (as the CPU solver would raise) and yields ``None`` from then on,
    while the rest of the batch carries on.
    """

    def __init__(
        self,
        flows: Sequence[PreparedFlow],
        device: torch.device | str = "cpu",
        settings: BatchSettings | None = None,
        inflow_scales: Sequence[InflowScale | None] | None = None,
    ) -> None:
        substeps = {f.substeps for f in flows}
        if len(substeps) != 1:
            raise ValueError(f"a batch needs one sub-step count per frame, got {sorted(substeps)}")
        self.substeps = substeps.pop()
        self.flows = list(flows)
        self.stepper = BatchedIpcs(flows, device, settings, inflow_scales)
        self.failures: dict[int, DivergenceError] = {}

    def frames(
        self,
        steps: int,
        cancel: threading.Event | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> Iterator[list[Frame | None]]:
        """Frame 0 (rest, t = 0), then one per output dt for ``steps`` steps; the fields in
        ``dtype`` (the solver works in fp64 whatever it is)."""
        rest = [np.zeros((len(f.obstacle_dofs), 2)) for f in self.flows]
        yield self._frames(0, [(z, z) for z in rest], dtype)
        for step in range(1, steps + 1):
            if cancel is not None and cancel.is_set():
                return
            for _ in range(self.substeps):
                self.stepper.step()
            self._check(step)
            yield self._frames(step, self.stepper.forces(), dtype)

    def _check(self, step: int) -> None:
        peak, unconverged = self.stepper.health()
        bad = []
        for b, f in enumerate(self.flows):
            if b in self.failures:
                continue
            if unconverged[b]:
                self.failures[b] = DivergenceError(
                    step,
                    f"a linear solve did not converge (peak velocity {peak[b]:.3g} m/s, blow-up "
                    f"limit {f.blowup_limit:.3g}): the flow is likely blowing up",
                )
            elif not np.isfinite(peak[b]):
                self.failures[b] = DivergenceError(step, "the velocity or pressure became NaN/inf")
            elif peak[b] > f.blowup_limit:
                self.failures[b] = DivergenceError(
                    step,
                    f"velocity reached {peak[b]:.3g} m/s, far above the inflow "
                    f"(limit {f.blowup_limit:.3g})",
                )
            else:
                continue
            bad.append(b)
        if bad:
            self.stepper.freeze(bad)

    def _frames(self, step: int, forces, dtype: torch.dtype) -> list[Frame | None]:
        fields = self.stepper.vertex_fields(dtype)
        out: list[Frame | None] = []
        for b, (f, (force, coeff)) in enumerate(zip(self.flows, forces, strict=True)):
            if b in self.failures:
                out.append(None)
                continue
            n = f.mesh.num_nodes
            out.append(
                Frame(
                    step=step,
                    time=step * f.scenario.time.dt,
                    u=fields[b, :n, 0].copy(),
                    v=fields[b, :n, 1].copy(),
                    p=fields[b, :n, 2].copy(),
                    forces=force,
                    coefficients=coeff,
                )
            )
        return out
