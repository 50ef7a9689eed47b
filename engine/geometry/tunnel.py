"""Mesh a scenario's tunnel with gmsh: triangles, fine at obstacles and in their wakes.

gmsh keeps global state and is not thread-safe, so every use goes through :func:`gmsh_session`,
which serialises callers with a lock and always finalizes; ``interruptible=False`` lets it run
outside the main thread (the app meshes in a worker).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from engine.errors import MeshingError
from engine.geometry.mesh import TunnelMesh
from engine.geometry.polygon import resample
from engine.geometry.shapes import is_polygonal
from engine.geometry.validate import validate_obstacles
from engine.nodetypes import NodeType
from engine.scenario import Scenario

_GMSH_LOCK = threading.Lock()


@dataclass(frozen=True)
class SizingRules:
    """How element size grows away from obstacles; fixed so meshes are comparable across runs."""

    growth: float = 0.3  # size increase per unit distance away from the obstacle
    wake_length: float = 5.0  # wake band length, in obstacle extents downstream
    wake_spread: float = 0.25  # wake band half-height margin, in obstacle extents
    corner_deg: float = 30.0  # outline turns sharper than this are kept as mesh vertices


RULES = SizingRules()


@contextmanager
def gmsh_session() -> Iterator[ModuleType]:
    """The gmsh module, initialised for this block only, quiet and single-threaded."""
    import gmsh

    with _GMSH_LOCK:
        gmsh.initialize(readConfigFiles=False, interruptible=False)
        try:
            gmsh.option.setNumber("General.Terminal", 0)
            gmsh.option.setNumber("General.NumThreads", 1)
            gmsh.logger.start()
            yield gmsh
        finally:
            gmsh.finalize()


def _gmsh_errors(gmsh: ModuleType) -> str:
    lines = [line for line in gmsh.logger.get() if line.startswith("Error")]
    return "; ".join(lines[-3:])


def build_tunnel_mesh(scenario: Scenario) -> TunnelMesh:
    """The scenario's fluid domain as a P1 triangle mesh with node types and boundary edges.

    With ``mesh.file`` set, that mesh is loaded as it is. Otherwise the obstacles are validated,
    their outlines resampled to ``mesh.obstacle_size`` (finer where they bend sharply) and gmsh
    fills the tunnel, growing elements to ``mesh.size`` away from obstacles and keeping them at
    ``mesh.wake_size`` in a band downstream of each obstacle.
    """
    if scenario.mesh.file is not None:
        from engine.geometry.meshfile import load_mesh_file

        validate_obstacles(scenario)
        return load_mesh_file(scenario.resolve(scenario.mesh.file))

    outlines = validate_obstacles(scenario)
    h_obs = scenario.mesh.obstacle_size
    boundaries = [
        resample(pts, h_obs, corner_deg=0.0 if is_polygonal(obstacle) else RULES.corner_deg)
        for obstacle, pts in zip(scenario.obstacles, outlines, strict=True)
    ]
    with gmsh_session() as gmsh:
        try:
            _build_geometry(gmsh, scenario, boundaries)
            gmsh.model.mesh.generate(2)
            errors = _gmsh_errors(gmsh)  # some failures are only logged, leaving a broken mesh
            if errors:
                raise MeshingError(f"gmsh could not mesh the tunnel: {errors}")
            return _extract(gmsh, len(boundaries))
        except Exception as exc:
            # gmsh raises bare Exception; MeshingError and bugs pass through unchanged
            if type(exc) is not Exception:
                raise
            detail = _gmsh_errors(gmsh) or str(exc)
            raise MeshingError(f"gmsh could not mesh the tunnel: {detail}") from None


def _spacing(pts: np.ndarray) -> np.ndarray:
    """Local point spacing of a closed outline: mean length of the two adjacent segments."""
    seg = np.linalg.norm(np.roll(pts, -1, axis=0) - pts, axis=1)
    return 0.5 * (seg + np.roll(seg, 1))


def _build_geometry(gmsh: ModuleType, scenario: Scenario, boundaries: list[np.ndarray]) -> None:
    geo = gmsh.model.geo
    length, height = scenario.tunnel.length, scenario.tunnel.height
    size, h_obs = scenario.mesh.size, scenario.mesh.obstacle_size
    wake = min(scenario.mesh.wake_size or 0.5 * (size + h_obs), size)
    gmsh.model.add("tunnel")

    corners = [
        geo.addPoint(x, y, 0.0, size)
        for x, y in ((0, 0), (length, 0), (length, height), (0, height))
    ]
    bottom = geo.addLine(corners[0], corners[1])
    outlet = geo.addLine(corners[1], corners[2])
    top = geo.addLine(corners[2], corners[3])
    inlet = geo.addLine(corners[3], corners[0])
    loops = [geo.addCurveLoop([bottom, outlet, top, inlet])]

    obstacle_points: list[list[int]] = []
    obstacle_curves: list[list[int]] = []
    for pts in boundaries:
        tags = [
            geo.addPoint(float(x), float(y), 0.0, float(h))
            for (x, y), h in zip(pts, _spacing(pts), strict=True)
        ]
        curves = [geo.addLine(tags[k], tags[(k + 1) % len(tags)]) for k in range(len(tags))]
        obstacle_points.append(tags)
        obstacle_curves.append(curves)
        loops.append(geo.addCurveLoop(curves))
    surface = geo.addPlaneSurface(loops)
    geo.synchronize()

    gmsh.model.addPhysicalGroup(1, [inlet], name="inflow")
    gmsh.model.addPhysicalGroup(1, [outlet], name="outflow")
    gmsh.model.addPhysicalGroup(1, [bottom, top], name="walls")
    for i, curves in enumerate(obstacle_curves):
        gmsh.model.addPhysicalGroup(1, curves, name=f"obstacle-{i}")
    gmsh.model.addPhysicalGroup(2, [surface], name="fluid")

    fields = gmsh.model.mesh.field

    def grow_from(dist_field: int, h_min: float, h_max: float) -> int:
        """Size h_min at distance 0, growing linearly (RULES.growth) up to h_max; no say beyond."""
        threshold = fields.add("Threshold")
        fields.setNumber(threshold, "InField", dist_field)
        fields.setNumber(threshold, "SizeMin", h_min)
        fields.setNumber(threshold, "SizeMax", h_max)
        fields.setNumber(threshold, "DistMin", 0.0)
        fields.setNumber(threshold, "DistMax", (h_max - h_min) / RULES.growth)
        fields.setNumber(threshold, "StopAtDistMax", 1)
        return threshold

    sizing: list[int] = []
    if boundaries:
        surfaces = fields.add("Distance")
        fields.setNumbers(surfaces, "CurvesList", [c for cs in obstacle_curves for c in cs])
        fields.setNumber(surfaces, "Sampling", 3)
        sizing.append(grow_from(surfaces, h_obs, size))
    for pts, tags in zip(boundaries, obstacle_points, strict=True):
        spacing = _spacing(pts)
        fine = spacing < 0.9 * h_obs
        if fine.any():  # sharp bends such as leading edges: grade into the surface size
            bends = fields.add("Distance")
            fields.setNumbers(
                bends, "PointsList", [t for t, f in zip(tags, fine, strict=True) if f]
            )
            sizing.append(grow_from(bends, float(spacing[fine].min()), h_obs))
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        extent = float((hi - lo).max())
        band = fields.add("Box")
        fields.setNumber(band, "VIn", wake)
        fields.setNumber(band, "VOut", size)
        fields.setNumber(band, "XMin", float(lo[0]))
        fields.setNumber(band, "XMax", float(min(length, hi[0] + RULES.wake_length * extent)))
        fields.setNumber(band, "YMin", float(lo[1] - RULES.wake_spread * extent))
        fields.setNumber(band, "YMax", float(hi[1] + RULES.wake_spread * extent))
        fields.setNumber(band, "Thickness", (size - wake) / RULES.growth)
        sizing.append(band)
    if sizing:
        background = fields.add("Min")
        fields.setNumbers(background, "FieldsList", sizing)
        fields.setAsBackgroundMesh(background)

    # Sizes come from the fields alone: extending boundary sizes inland would interpolate the
    # obstacle size across the whole tunnel and over-refine it.
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay: the best-shaped triangles
    gmsh.option.setNumber("Mesh.ElementOrder", 1)
    gmsh.option.setNumber("Mesh.MeshSizeMax", size)


def _extract(gmsh: ModuleType, n_obstacles: int) -> TunnelMesh:
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    xy = np.asarray(coords, dtype=float).reshape(-1, 3)[:, :2]
    types, _, elem_nodes = gmsh.model.mesh.getElements(2)
    if list(types) != [2]:
        raise MeshingError(f"gmsh produced element types {list(types)}, expected only triangles")
    tri_tags = np.asarray(elem_nodes[0], dtype=np.int64).reshape(-1, 3)

    # Keep only vertices used by triangles, numbered in gmsh's order (deterministic).
    used = np.unique(tri_tags)
    order = np.argsort(node_tags)
    tag_sorted = np.asarray(node_tags, dtype=np.int64)[order]
    points = xy[order][np.searchsorted(tag_sorted, used)]
    index = np.full(int(used.max()) + 1, -1, dtype=np.int64)
    index[used] = np.arange(len(used))

    cells = index[tri_tags]
    a, b, c = points[cells[:, 0]], points[cells[:, 1]], points[cells[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    cells[area2 < 0] = cells[area2 < 0][:, [0, 2, 1]]

    names = ["inflow", "outflow", "walls", *[f"obstacle-{i}" for i in range(n_obstacles)]]
    groups = {
        gmsh.model.getPhysicalName(dim, tag): tag for dim, tag in gmsh.model.getPhysicalGroups(1)
    }
    boundary_edges: dict[str, np.ndarray] = {}
    for name in names:
        edges = []
        for entity in gmsh.model.getEntitiesForPhysicalGroup(1, groups[name]):
            _, _, line_nodes = gmsh.model.mesh.getElements(1, entity)
            edges.append(np.asarray(line_nodes[0], dtype=np.int64).reshape(-1, 2))
        tags = np.concatenate(edges)
        if (index[tags] < 0).any():
            raise MeshingError(f"boundary {name} has vertices outside the triangle mesh")
        boundary_edges[name] = index[tags]
    return TunnelMesh(
        points=points,
        cells=cells,
        node_type=node_types_from_edges(len(points), boundary_edges),
        boundary_edges=boundary_edges,
    )


def node_types_from_edges(num_nodes: int, boundary_edges: dict[str, np.ndarray]) -> np.ndarray:
    """Node types from boundary edges; at shared corners walls beat inflow beats outflow.

    Walls win over inflow at the inlet corners so no-slip holds there; both fix the velocity, so
    both win over outflow (do-nothing).
    """
    node_type = np.full(num_nodes, NodeType.NORMAL, dtype=np.int64)
    priority = [
        ("outflow", NodeType.OUTFLOW),
        ("inflow", NodeType.INFLOW),
        ("walls", NodeType.WALL_BOUNDARY),
    ]
    for name, kind in priority:
        if name in boundary_edges:
            node_type[boundary_edges[name].ravel()] = kind
    for name, edges in boundary_edges.items():
        if name.startswith("obstacle-"):
            node_type[edges.ravel()] = NodeType.OBSTACLE
    return node_type
