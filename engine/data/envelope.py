"""Random scenarios spanning the default model's training envelope.

Every shape class, 1–3 obstacles, varied positions and sizes, tunnels 1.5–3 heights long, both
wall types and both inflow profiles, Re 10–300 (log-uniform, so the steady, onset and shedding
regimes are all well represented) and meshes of about 1k–5k vertices. Reynolds number is set
through the viscosity once the geometry is drawn, so it holds exactly for the sampled shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import SlipstreamError
from engine.scenario import (
    Blob,
    Circle,
    Ellipse,
    Fluid,
    Inflow,
    MeshSpec,
    Naca,
    Obstacle,
    Rectangle,
    Scenario,
    TimeSpec,
    Tunnel,
)

SHAPE_CLASSES = ("circle", "ellipse", "rectangle", "naca", "blob")


@dataclass(frozen=True)
class Envelope:
    """The parameter ranges :func:`sample_scenario` draws from."""

    height: float = 0.41
    length_ratio: tuple[float, float] = (1.5, 3.0)  # tunnel length / height
    obstacles: tuple[int, int] = (1, 3)
    size: tuple[float, float] = (0.06, 0.12)  # obstacle reference length (chord: ×1.5)
    reynolds: tuple[float, float] = (10.0, 300.0)
    mean_speed: tuple[float, float] = (0.5, 1.5)
    naca_angle_deg: tuple[float, float] = (-15.0, 15.0)
    slip_wall_probability: float = 0.4
    uniform_inflow_probability: float = 0.4
    far_field_cells: tuple[float, float] = (18.0, 30.0)  # elements across the tunnel height
    obstacle_cells: tuple[float, float] = (12.0, 20.0)  # elements across an obstacle's size
    dt: float = 0.01
    steps: int = 600
    max_attempts: int = 200


DEFAULT_ENVELOPE = Envelope()


def _obstacle(
    rng: np.random.Generator, kind: str, center: tuple[float, float], size: float, env: Envelope
) -> Obstacle:
    angle = float(rng.uniform(-90.0, 90.0))
    if kind == "circle":
        return Circle(center, size / 2)
    if kind == "ellipse":
        a = size / 2
        return Ellipse(center, (a, a * float(rng.uniform(0.35, 0.9))), angle)
    if kind == "rectangle":
        return Rectangle(center, (size, size * float(rng.uniform(0.3, 1.0))), angle / 3)
    if kind == "naca":
        camber = int(rng.choice([0, 0, 1, 2, 4]))
        position = int(rng.integers(2, 7)) if camber else 0
        thickness = int(rng.integers(8, 19))
        code = f"{camber}{position}{thickness:02d}"
        return Naca(code, 1.5 * size, center, float(rng.uniform(*env.naca_angle_deg)))
    harmonics = []
    budget = float(rng.uniform(0.15, 0.45))  # total amplitude: bumpy but never folding
    weights = rng.dirichlet(np.ones(6))
    for k in range(3):
        a, b = budget * weights[2 * k], budget * weights[2 * k + 1]
        harmonics.append((float(a * rng.choice([-1, 1])), float(b * rng.choice([-1, 1]))))
    return Blob(center, size / 2, tuple(harmonics), angle)


def _draw(rng: np.random.Generator, env: Envelope) -> Scenario:
    height = env.height
    length = height * float(rng.uniform(*env.length_ratio))
    count = int(rng.integers(env.obstacles[0], env.obstacles[1] + 1))
    obstacles = []
    for _ in range(count):
        kind = str(rng.choice(SHAPE_CLASSES))
        size = float(rng.uniform(*env.size))
        x = float(rng.uniform(0.12 * length, min(0.6 * length, length - 3 * size)))
        y = float(rng.uniform(0.25 * height, 0.75 * height))
        obstacles.append(_obstacle(rng, kind, (x, y), size, env))
    min_size = min(o.reference_length for o in obstacles)
    obstacle_size = min_size / float(rng.uniform(*env.obstacle_cells))
    size = height / float(rng.uniform(*env.far_field_cells))
    walls = "slip" if rng.random() < env.slip_wall_probability else "no-slip"
    profile = "uniform" if rng.random() < env.uniform_inflow_probability else "parabolic"
    speed = float(rng.uniform(*env.mean_speed))
    lo, hi = env.reynolds
    reynolds = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    scenario = Scenario(
        tunnel=Tunnel(length=length, height=height, walls=walls),  # type: ignore[arg-type]
        obstacles=tuple(obstacles),
        inflow=Inflow(profile=profile, mean_speed=speed),  # type: ignore[arg-type]
        mesh=MeshSpec(size=size, obstacle_size=min(obstacle_size, size)),
        time=TimeSpec(dt=env.dt, steps=env.steps),
    )
    viscosity = speed * scenario.reference_length / reynolds
    return scenario.replace(fluid=Fluid(viscosity=viscosity))


def sample_scenario(rng: np.random.Generator, envelope: Envelope = DEFAULT_ENVELOPE) -> Scenario:
    """A random valid scenario from the envelope (invalid draws are redrawn).

    Deterministic for a given generator state, so ``default_rng([seed, index])`` names a
    trajectory reproducibly however the work is split over processes and machines.
    """
    for _ in range(envelope.max_attempts):
        scenario = _draw(rng, envelope)
        try:
            # Round-trip through JSON: the file written with the data must load back the same.
            scenario = Scenario.from_dict(scenario.to_dict())
            return scenario.validate()
        except SlipstreamError:
            continue
    raise SlipstreamError(
        f"no valid scenario in {envelope.max_attempts} draws: the envelope is too tight"
    )
