"""One step of a flow, as produced by the reference solver and by learned rollouts alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """The state at one time step, on the mesh's vertices.

    ``forces`` holds, per obstacle, the force on it [N per unit depth] as (drag, lift), i.e. along
    and across the inflow direction; ``coefficients`` the same made dimensionless,
    c = 2 F / (ρ Ū² L) with the scenario's reference length L.
    """

    step: int
    time: float
    u: np.ndarray  # [N] x-velocity
    v: np.ndarray  # [N] y-velocity
    p: np.ndarray  # [N] pressure [Pa]
    forces: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [n_obstacles, 2]
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [n_obstacles, 2]

    @property
    def speed(self) -> np.ndarray:
        return np.hypot(self.u, self.v)
