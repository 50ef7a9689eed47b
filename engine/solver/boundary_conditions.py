"""Which velocity dofs are prescribed, and to what, at a given time.

Tunnel walls are horizontal, so a slip wall only fixes v (u slides freely) and the two velocity
components keep separate Dirichlet sets. Where boundaries meet, the later assignment wins:
walls and obstacles (zero) over the inflow profile, so the inlet corners of a no-slip tunnel are
at rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.boundary import inflow_velocity
from engine.scenario import Scenario
from engine.solver.spaces import FlowSpaces

InflowScale = Callable[[float], float]


@dataclass
class VelocityConditions:
    scenario: Scenario
    spaces: FlowSpaces
    inflow_scale: InflowScale | None = None

    def __post_init__(self) -> None:
        b = self.spaces.boundary_dofs
        walls = b.get("walls", np.zeros(0, dtype=np.int64))
        obstacles = [b[k] for k in b if k.startswith("obstacle-")]
        inflow = b["inflow"]
        fixed_x = [walls] if self.scenario.tunnel.walls == "no-slip" else []
        fixed_y = [walls]
        self._inflow = inflow
        self._inflow_points = self.spaces.velocity_dof_points[inflow]
        self._zero = (
            np.concatenate([*fixed_x, *obstacles]).astype(np.int64),
            np.concatenate([*fixed_y, *obstacles]).astype(np.int64),
        )
        self.dofs = tuple(np.union1d(inflow, zero) for zero in self._zero)

    def values(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """Prescribed (u, v) on ``self.dofs[0]`` and ``self.dofs[1]`` at ``time``."""
        inflow = inflow_velocity(self.scenario, self._inflow_points, time)
        if self.inflow_scale is not None:
            inflow = inflow * self.inflow_scale(time)
        out = []
        n = self.spaces.num_velocity_dofs
        for c in (0, 1):
            full = np.zeros(n)
            full[self._inflow] = inflow[:, c]
            full[self._zero[c]] = 0.0
            out.append(full[self.dofs[c]])
        return out[0], out[1]
