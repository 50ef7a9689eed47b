"""Obstacle outlines: each scenario shape as a closed counter-clockwise polygon; tunnel coordinates.

Smooth shapes are sampled densely (meshing resamples them to the element size); polygons and
rectangles keep exactly their vertices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import GeometryError
from engine.geometry.polygon import drop_duplicates, ensure_ccw, rotate
from engine.scenario import (
    Blob,
    Circle,
    Ellipse,
    FileShape,
    Naca,
    Obstacle,
    Polygon,
    Rectangle,
    Scenario,
)

SMOOTH_SAMPLES = 720  # points on circles, ellipses and blobs (0.5°: sag ~1e-5 of the radius)
NACA_SAMPLES = 121  # points per surface, cosine-spaced so the leading edge is well resolved


def naca4(code: str, samples: int = NACA_SAMPLES) -> np.ndarray:
    """Unit-chord NACA 4-digit section, leading edge at (0, 0), closed trailing edge.

    Standard thickness distribution with the -0.1036 last coefficient (instead of -0.1015) so
    the trailing edge closes to a point; thickness is applied normal to the camber line.
    Order: trailing edge → upper surface → leading edge → lower surface (counter-clockwise).
    """
    m, p, t = int(code[0]) / 100.0, int(code[1]) / 10.0, int(code[2:]) / 100.0
    beta = np.linspace(0.0, np.pi, samples)
    x = 0.5 * (1.0 - np.cos(beta))
    yt = 5 * t * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1036 * x**4)
    if m > 0:
        front = x < p
        yc = np.where(
            front, m / p**2 * (2 * p * x - x**2), m / (1 - p) ** 2 * (1 - 2 * p + 2 * p * x - x**2)
        )
        dyc = np.where(front, 2 * m / p**2 * (p - x), 2 * m / (1 - p) ** 2 * (p - x))
    else:
        yc = np.zeros_like(x)
        dyc = np.zeros_like(x)
    theta = np.arctan(dyc)
    upper = np.stack([x - yt * np.sin(theta), yc + yt * np.cos(theta)], axis=1)
    lower = np.stack([x + yt * np.sin(theta), yc - yt * np.cos(theta)], axis=1)
    # upper from TE to LE, then lower from just after LE to just before TE (TE is one point)
    return np.vstack([upper[::-1], lower[1:-1]])


def blob_outline(radius: float, harmonics: tuple[tuple[float, float], ...]) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, SMOOTH_SAMPLES, endpoint=False)
    r = np.ones_like(theta)
    for k, (a, b) in enumerate(harmonics, start=2):
        r += a * np.cos(k * theta) + b * np.sin(k * theta)
    return radius * np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def normalise(points: np.ndarray) -> np.ndarray:
    """Centre an outline's bounding box on the origin and scale its largest extent to 1."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    extent = float((hi - lo).max())
    if extent <= 0:
        raise GeometryError("the outline has zero extent")
    return (points - 0.5 * (lo + hi)) / extent


def load_outline_file(path: Path) -> np.ndarray:
    """Read a shape file into a counter-clockwise outline in its own coordinates, by extension."""
    from engine.geometry.airfoil_file import load_airfoil_dat
    from engine.geometry.surface_section import SURFACE_SUFFIXES, section_from_surface

    suffix = path.suffix.lower()
    if suffix in (".dat", ".txt", ".csv"):
        return load_airfoil_dat(path)
    if suffix in SURFACE_SUFFIXES:
        return section_from_surface(path)
    raise GeometryError(
        f"{path}: unsupported shape file type {suffix or '(none)'}; "
        f"use an airfoil .dat or a surface {', '.join(SURFACE_SUFFIXES)}"
    )


def outline(obstacle: Obstacle, scenario: Scenario) -> np.ndarray:
    """Closed outline [K, 2] of ``obstacle``, counter-clockwise, last point not repeated."""
    if isinstance(obstacle, Circle):
        local = blob_outline(obstacle.radius, ())
        angle = 0.0
    elif isinstance(obstacle, Ellipse):
        theta = np.linspace(0.0, 2 * np.pi, SMOOTH_SAMPLES, endpoint=False)
        local = np.stack(
            [obstacle.axes[0] * np.cos(theta), obstacle.axes[1] * np.sin(theta)], axis=1
        )
        angle = obstacle.angle_deg
    elif isinstance(obstacle, Rectangle):
        w, h = obstacle.size
        local = 0.5 * np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
        angle = obstacle.angle_deg
    elif isinstance(obstacle, Naca):
        local = (naca4(obstacle.code) - [0.5, 0.0]) * obstacle.chord
        angle = obstacle.angle_deg
    elif isinstance(obstacle, Polygon):
        pts = drop_duplicates(np.asarray(obstacle.points, dtype=float), 0.0)
        return ensure_ccw(pts)
    elif isinstance(obstacle, Blob):
        local = blob_outline(obstacle.radius, obstacle.harmonics)
        angle = obstacle.angle_deg
    elif isinstance(obstacle, FileShape):
        local = normalise(load_outline_file(scenario.resolve(obstacle.path))) * obstacle.scale
        angle = obstacle.angle_deg
    else:  # pragma: no cover - the Obstacle union is closed
        raise TypeError(f"unknown obstacle type {type(obstacle).__name__}")
    return ensure_ccw(rotate(local, angle) + np.asarray(obstacle.center, dtype=float))


def is_polygonal(obstacle: Obstacle) -> bool:
    """Whether every outline vertex is a deliberate corner (kept exactly by the mesher)."""
    return isinstance(obstacle, (Polygon, Rectangle))
