"""VTU time series from other solvers (a ``.pvd`` collection, a folder or glob of ``.vtu``, or one
``.vtu``) as a Trajectory on a fixed 2D triangle mesh."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import meshio
import numpy as np

from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.geometry.meshfile import _counter_clockwise as counter_clockwise
from engine.io.boundaries import infer_node_types
from engine.io.fields import cells_to_points, pick_pressure, pick_velocity

DEFAULT_DT = 0.01  # used only when the files carry no times (MeshGraphNets' CylinderFlow step)
IGNORED_CELLS = {"vertex", "line", "line3"}  # boundary markers some writers add
VOLUME_CELLS = {
    "tetra",
    "tetra10",
    "hexahedron",
    "hexahedron20",
    "hexahedron27",
    "wedge",
    "wedge15",
    "pyramid",
    "pyramid13",
    "polyhedron",
}


def _natural_key(path: Path) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def series_files(source: str | Path) -> tuple[list[Path], list[float] | None]:
    """The VTU files of a source in time order, and their times when the source states them."""
    text = str(source)
    if any(c in text for c in "*?["):
        pattern = Path(text)
        files = sorted(pattern.parent.glob(pattern.name), key=_natural_key)
        if not files:
            raise DataFormatError(f"{text}: no files match")
        return files, None
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.vtu"), key=_natural_key)
        if not files:
            raise DataFormatError(f"{path}: no .vtu files in this folder")
        return files, None
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".pvd":
        return _read_pvd(path)
    return [path], None


def _read_pvd(path: Path) -> tuple[list[Path], list[float]]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataFormatError(f"{path.name}: not a readable PVD file ({exc})") from None
    entries = root.findall("./Collection/DataSet")
    if not entries:
        raise DataFormatError(f"{path.name}: the collection lists no data sets")
    timed: list[tuple[float, Path]] = []
    for e in entries:
        if e.get("part", "0") != "0":
            raise DataFormatError(f"{path.name}: multi-part collections are not supported")
        try:
            timed.append((float(e.get("timestep", "")), path.parent / e.attrib["file"]))
        except (KeyError, ValueError):
            raise DataFormatError(f"{path.name}: a data set without a file or timestep") from None
    timed.sort(key=lambda item: item[0])
    return [p for _, p in timed], [t for t, _ in timed]


@dataclass
class _Snapshot:
    points: np.ndarray  # [N, 2]
    cells: np.ndarray  # [C, 3]
    arrays: dict[str, np.ndarray]  # point arrays, cell arrays averaged onto points
    time: float | None


def _triangles(mesh: meshio.Mesh, name: str) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Triangles of all 2D blocks (quads split in two) and, per block, which cell each came from."""
    tris, origin = [], []
    for b, block in enumerate(mesh.cells):
        if block.type in VOLUME_CELLS:
            raise DataFormatError(
                f"{name}: has 3D cells ({block.type}); only 2D triangle meshes can be imported "
                "(slice the 3D result to a plane first)"
            )
        if block.type == "triangle":
            tris.append(block.data)
            origin.append((b, np.arange(len(block.data))))
        elif block.type == "quad":
            q = block.data
            tris.append(np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]]))
            origin.append((b, np.tile(np.arange(len(q)), 2)))
        elif block.type not in IGNORED_CELLS:
            raise DataFormatError(f"{name}: unsupported cell type {block.type}")
    if not tris:
        raise DataFormatError(f"{name}: no triangles")
    return np.concatenate(tris).astype(np.int64), origin


def _read_snapshot(path: Path) -> _Snapshot:
    try:
        mesh = meshio.vtu.read(path)  # not meshio.read, which calls sys.exit on a bad file
    except Exception as exc:  # anything from XML, zlib, base64, numpy or meshio itself
        raise DataFormatError(f"{path.name}: not a readable VTU file ({exc})") from None
    cells, origin = _triangles(mesh, path.name)
    pts = np.asarray(mesh.points, dtype=np.float64)
    cells = counter_clockwise(pts, cells)
    if pts.shape[1] == 3 and np.ptp(pts[:, 2]) > 1e-9 * max(1.0, float(np.ptp(pts[:, :2]))):
        raise DataFormatError(f"{path.name}: the points are not in one z-plane (a 3D surface?)")
    arrays = {k: np.asarray(v) for k, v in mesh.point_data.items()}
    for name, per_block in mesh.cell_data.items():
        if name in arrays:
            continue
        values = np.concatenate([np.asarray(per_block[b])[idx] for b, idx in origin])
        arrays[name] = cells_to_points(cells, values, len(pts))
    time = mesh.field_data.get("TimeValue")
    return _Snapshot(pts[:, :2], cells, arrays, None if time is None else float(np.ravel(time)[0]))


def read_vtu_series(source: str | Path, dt: float = DEFAULT_DT) -> Trajectory:
    """One trajectory from a VTU series. Times come from the PVD or each file's ``TimeValue``,
    otherwise ``dt`` apart. Node types come from a ``node_type`` array when the files have one,
    otherwise from the bounding box (left inflow, right outflow, walls, obstacle loops)."""
    files, times = series_files(source)
    first = _read_snapshot(files[0])
    velocity, pressure, file_times = [], [], []
    for path in files:
        snap = first if path == files[0] else _read_snapshot(path)
        if snap.points.shape != first.points.shape or not np.array_equal(snap.cells, first.cells):
            raise DataFormatError(
                f"{path.name}: the mesh differs from {files[0].name} (only fixed meshes import)"
            )
        velocity.append(pick_velocity(snap.arrays, path.name))
        pressure.append(pick_pressure(snap.arrays, path.name))
        file_times.append(snap.time)
    if times is None:
        stated = [t for t in file_times if t is not None]
        times = stated if len(stated) == len(files) else [dt * k for k in range(len(files))]
    node_type = first.arrays.get("node_type")
    node_type = (
        infer_node_types(first.points, first.cells)
        if node_type is None
        else np.asarray(node_type).reshape(-1).astype(np.int64)
    )
    steps = len(files)
    return Trajectory(
        mesh_pos=first.points,
        cells=first.cells,
        node_type=node_type,
        velocity=np.stack(velocity),
        pressure=np.stack(pressure),
        time=np.asarray(times, dtype=np.float64),
        forces=np.zeros((steps, 0, 2)),
        coefficients=np.zeros((steps, 0, 2)),
        attrs={"source": "vtu-series", "origin": str(source)},
    ).validate()
