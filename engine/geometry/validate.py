"""Geometric checks of a scenario's obstacles, each failure naming the obstacle (``obstacles[i]``).

Run before meshing so a bad scenario fails with a sentence the user can act on instead of a gmsh
error deep in the mesher.
"""

from __future__ import annotations

import numpy as np

from engine.errors import GeometryError, ScenarioError
from engine.geometry.polygon import contains, min_width, outline_distance, self_intersection
from engine.geometry.shapes import outline
from engine.scenario import FileShape, Obstacle, Polygon, Scenario

CLEARANCE_CELLS = 2.0  # obstacles keep this many obstacle-size elements from walls and each other


def can_self_intersect(obstacle: Obstacle) -> bool:
    """Only user-given point lists can cross themselves; built-in shapes are simple by design
    (a blob's radius stays positive because its harmonics sum to less than 0.9)."""
    return isinstance(obstacle, (Polygon, FileShape))


def obstacle_outlines(scenario: Scenario) -> list[np.ndarray]:
    """Each obstacle's outline; unreadable files become a ScenarioError naming the obstacle."""
    result = []
    for i, obstacle in enumerate(scenario.obstacles):
        try:
            result.append(outline(obstacle, scenario))
        except GeometryError as exc:
            field = f"obstacles[{i}].path" if isinstance(obstacle, FileShape) else f"obstacles[{i}]"
            raise ScenarioError(field, str(exc)) from None
    return result


def validate_obstacles(scenario: Scenario) -> list[np.ndarray]:
    """Check every obstacle; returns the outlines (the mesher reuses them)."""
    outlines = obstacle_outlines(scenario)
    length, height = scenario.tunnel.length, scenario.tunnel.height
    clearance = CLEARANCE_CELLS * scenario.mesh.obstacle_size
    for i, (obstacle, pts) in enumerate(zip(scenario.obstacles, outlines, strict=True)):
        name = f"obstacles[{i}]"
        crossing = self_intersection(pts) if can_self_intersect(obstacle) else None
        if crossing is not None:
            a, b = crossing
            raise ScenarioError(
                name, f"the outline crosses itself (edges {a} and {b}); reorder its points"
            )
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        if lo[0] < 0 or lo[1] < 0 or hi[0] > length or hi[1] > height:
            raise ScenarioError(
                name,
                f"lies outside the tunnel [0, {length:g}] × [0, {height:g}] "
                f"(extends over x {lo[0]:.3g}…{hi[0]:.3g}, y {lo[1]:.3g}…{hi[1]:.3g})",
            )
        gap = float(min(lo[0], lo[1], length - hi[0], height - hi[1]))
        if gap < clearance:
            raise ScenarioError(
                name,
                f"is {gap:.3g} from the tunnel boundary; keep at least {clearance:.3g} "
                f"({CLEARANCE_CELLS:g} elements of mesh.obstacle_size) so the mesh fits between",
            )
        width = min_width(pts)
        if width < scenario.mesh.obstacle_size:
            raise ScenarioError(
                name,
                f"is only {width:.3g} thick, thinner than mesh.obstacle_size "
                f"{scenario.mesh.obstacle_size:g}: the mesh cannot resolve it; make it thicker "
                "or mesh.obstacle_size smaller",
            )
        for j in range(i):
            other = outlines[j]
            if contains(other, pts[0]) or contains(pts, other[0]):
                raise ScenarioError(name, f"overlaps obstacles[{j}] (one lies inside the other)")
            distance = outline_distance(pts, other, clearance)
            if distance == 0.0:
                raise ScenarioError(name, f"overlaps obstacles[{j}]")
            if distance < clearance:
                raise ScenarioError(
                    name,
                    f"is {distance:.3g} from obstacles[{j}]; keep at least {clearance:.3g} "
                    f"({CLEARANCE_CELLS:g} elements of mesh.obstacle_size) between obstacles",
                )
    return outlines
