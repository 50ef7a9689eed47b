"""2D outlines from 3D surface files (STL/OBJ/PLY): cut by a plane z = const, keep the outer loop.

This is how a CAD part enters a 2D tunnel: export the body as a surface, take a section.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from engine.errors import GeometryError
from engine.geometry.polygon import drop_duplicates, ensure_ccw, signed_area

SURFACE_SUFFIXES = (".stl", ".obj", ".ply")


def _read_surface(path: Path):  # -> pyvista.PolyData
    import pyvista as pv

    if not path.is_file():
        raise GeometryError(f"{path}: no such file")
    if path.suffix.lower() not in SURFACE_SUFFIXES:
        raise GeometryError(f"{path}: expected one of {', '.join(SURFACE_SUFFIXES)}")
    try:
        with warnings.catch_warnings():  # VTK reports a bad file as a warning, then returns nothing
            warnings.simplefilter("ignore")
            surface = pv.read(path)
    except Exception as exc:  # VTK readers raise assorted types on malformed input
        raise GeometryError(f"{path}: cannot read the surface ({exc})") from None
    if surface.n_points == 0 or surface.n_cells == 0:
        raise GeometryError(f"{path}: the file holds no surface (empty or unreadable)")
    return surface.extract_surface(algorithm=None).triangulate().clean()


def _loops(section) -> tuple[list[np.ndarray], int]:
    """Closed polylines of a stripped slice, and how many open ones were found."""
    lines = section.lines
    points = np.asarray(section.points)[:, :2]
    closed: list[np.ndarray] = []
    open_count = 0
    i = 0
    while i < len(lines):
        n = int(lines[i])
        ids = lines[i + 1 : i + 1 + n]
        i += n + 1
        if n >= 4 and ids[0] == ids[-1]:
            closed.append(points[ids[:-1]])
        else:
            open_count += 1
    return closed, open_count


def section_from_surface(path: str | Path, plane_z: float | None = None) -> np.ndarray:
    """Outer outline [K, 2] (x, y) of the section z = ``plane_z`` (default: mid-height in z)."""
    path = Path(path)
    surface = _read_surface(path)
    zmin, zmax = surface.bounds[4], surface.bounds[5]
    z = 0.5 * (zmin + zmax) if plane_z is None else float(plane_z)
    if not zmin <= z <= zmax:
        raise GeometryError(
            f"{path}: the plane z = {z:g} misses the body (z from {zmin:g} to {zmax:g})"
        )
    cx, cy = (
        0.5 * (surface.bounds[0] + surface.bounds[1]),
        0.5 * (surface.bounds[2] + surface.bounds[3]),
    )
    section = surface.slice(normal="z", origin=(cx, cy, z))
    if section.n_points == 0:
        raise GeometryError(f"{path}: the section at z = {z:g} is empty")
    section = section.clean().strip(join=True)
    loops, open_count = _loops(section)
    if open_count or not loops:
        raise GeometryError(
            f"{path}: the section at z = {z:g} is open ({open_count} loose piece(s)); "
            "the surface must be watertight"
        )
    extent = float(np.ptp(np.asarray(section.points)[:, :2], axis=0).max())
    outer = max(loops, key=lambda loop: abs(signed_area(loop)))
    outer = drop_duplicates(outer, 1e-9 * extent)
    if len(outer) < 3 or abs(signed_area(outer)) <= 1e-12 * extent**2:
        raise GeometryError(f"{path}: the section at z = {z:g} has no area")
    return ensure_ccw(outer)
