"""A 2D OpenFOAM case (one cell thick in z) as a Trajectory: one frame per time directory.

VTK's OpenFOAM reader interpolates the cell fields to the points (using the patch values on the
boundary); the mesh is then cut at mid-depth, which turns each hexahedron or prism into one
quadrilateral or triangle in the plane, and triangulated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyvista as pv

from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.geometry.meshfile import _counter_clockwise as counter_clockwise
from engine.io.boundaries import infer_node_types
from engine.io.fields import pick_pressure, pick_velocity

REQUIRED_FILES = ("system/controlDict", "constant/polyMesh/points", "constant/polyMesh/faces")


def is_openfoam_case(path: Path) -> bool:
    return path.is_dir() and (path / "system" / "controlDict").is_file()


def _mid_plane(grid: pv.UnstructuredGrid, case: Path, label: str) -> pv.PolyData:
    """The cut at mid-depth, triangulated; refuses cases more than one cell thick."""
    zmin, zmax = grid.bounds[4], grid.bounds[5]
    plane = grid.slice(normal="z", origin=(0.0, 0.0, 0.5 * (zmin + zmax)))
    sliced_cells = plane.n_cells  # one polygon per cell cut
    if sliced_cells == 0 or sliced_cells != grid.n_cells:
        raise DataFormatError(
            f"{case.name} ({label}): a 3D case — only {sliced_cells} of its {grid.n_cells} cells "
            "lie in the mid-plane; only 2D cases one cell thick in z can be imported"
        )
    return plane.triangulate()


def read_openfoam_case(case: str | Path) -> Trajectory:
    """Every time directory of a reconstructed case (``0`` included), U -> velocity (x, y),
    p -> pressure. Node types are inferred from the bounding box (see engine.io.boundaries)."""
    case = Path(case)
    missing = [name for name in REQUIRED_FILES if not (case / name).is_file()]
    if missing:
        raise DataFormatError(
            f"{case}: not an OpenFOAM case (missing {', '.join(missing)}; decomposed cases need "
            "reconstructPar first)"
        )
    try:
        with pv.vtk_verbosity("off"):
            reader = pv.OpenFOAMReader(str(case / "system" / "controlDict"))
            reader.cell_to_point_creation = True
            reader.disable_all_patch_arrays()
            reader.enable_patch_array("internalMesh")
            times = list(reader.time_values)
            if not times:
                raise DataFormatError(f"{case}: no time directories")
            planes = []
            for t in times:
                reader.set_active_time_value(t)
                grid = reader.read()["internalMesh"]
                planes.append(_mid_plane(grid, case, f"time {t:g}"))
    except DataFormatError:
        raise
    except Exception as exc:  # VTK reports unreadable files as its own exceptions
        raise DataFormatError(f"{case}: VTK's OpenFOAM reader failed ({exc})") from None

    first = planes[0]
    points = np.asarray(first.points[:, :2], dtype=np.float64)
    cells = counter_clockwise(points, first.faces.reshape(-1, 4)[:, 1:])
    velocity, pressure = [], []
    for t, plane in zip(times, planes, strict=True):
        label = f"{case.name} (time {t:g})"
        if plane.n_points != first.n_points or not np.allclose(plane.points, first.points):
            raise DataFormatError(f"{label}: the mesh moves; only fixed meshes can be imported")
        arrays = {name: np.asarray(plane.point_data[name]) for name in plane.point_data}
        velocity.append(pick_velocity(arrays, label))
        pressure.append(pick_pressure(arrays, label))
    steps = len(times)
    return Trajectory(
        mesh_pos=points,
        cells=cells,
        node_type=infer_node_types(points, cells),
        velocity=np.stack(velocity),
        pressure=np.stack(pressure),
        time=np.asarray(times, dtype=np.float64),
        forces=np.zeros((steps, 0, 2)),
        coefficients=np.zeros((steps, 0, 2)),
        attrs={"source": "openfoam", "origin": str(case)},
    ).validate()
