"""Boundary values shared by the reference solver and learned rollouts, so both see one inflow."""

from __future__ import annotations

import math

import numpy as np

from engine.scenario import Scenario


def ramp(scenario: Scenario, time: float) -> float:
    """Smooth start-up factor in [0, 1]: ½(1 − cos πt/T) over the scenario's ramp time T."""
    t_ramp = scenario.inflow.ramp_time
    if t_ramp <= 0 or time >= t_ramp:
        return 1.0
    return 0.5 * (1.0 - math.cos(math.pi * max(time, 0.0) / t_ramp))


def inflow_velocity(scenario: Scenario, points: np.ndarray, time: float) -> np.ndarray:
    """Velocity [K, 2] imposed at inlet points [K, 2] at ``time``.

    Parabolic: 1.5 Ū · 4 y (H − y) / H², so its mean over the inlet is Ū (the DFG convention);
    uniform: Ū. The direction is turned by ``inflow.angle_deg``.
    """
    h = scenario.tunnel.height
    mean = scenario.inflow.mean_speed * ramp(scenario, time)
    y = np.clip(points[:, 1], 0.0, h)
    if scenario.inflow.profile == "parabolic":
        speed = 1.5 * mean * 4.0 * y * (h - y) / h**2
    else:
        speed = np.full(len(points), mean)
    a = math.radians(scenario.inflow.angle_deg)
    return np.stack([speed * math.cos(a), speed * math.sin(a)], axis=-1)
