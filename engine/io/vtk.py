"""Export trajectories to files ParaView opens: one VTU per frame plus a PVD collection, or XDMF.

Velocity is written as a 3-component vector (ParaView's glyph and stream tracer filters want one),
alongside its components, pressure, speed, vorticity and the node types.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

import h5py
import meshio
import numpy as np

from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.io.derived import VertexGradient

Progress = Callable[[int, int], None]  # (frames done, frames to do)
Cancel = Callable[[], bool]  # polled between frames; True stops the export


def frame_point_data(
    u: np.ndarray, v: np.ndarray, p: np.ndarray, gradient: VertexGradient
) -> dict[str, np.ndarray]:
    """The point arrays written for one frame, named as ParaView users expect."""
    return {
        "velocity": np.stack([u, v], axis=-1),
        "u": u,
        "v": v,
        "pressure": p,
        "speed": np.hypot(u, v),
        "vorticity": gradient.vorticity(u, v),
    }


def _points3(mesh_pos: np.ndarray) -> np.ndarray:
    pts = np.asarray(mesh_pos, dtype=np.float64)
    return np.column_stack([pts[:, :2], np.zeros(len(pts))])


def _as_vtk_array(values: np.ndarray) -> np.ndarray:
    """2-component arrays become 3-component vectors (z = 0), which VTK treats as vectors."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 2:
        return np.column_stack([values, np.zeros(len(values), dtype=values.dtype)])
    return values


def write_frame_vtu(
    mesh_pos: np.ndarray,
    cells: np.ndarray,
    node_type: np.ndarray,
    frame_fields: Mapping[str, np.ndarray],
    path: str | Path,
) -> Path:
    """Write one frame: the triangle mesh with ``node_type`` and each of ``frame_fields`` as point
    data ([N] scalars or [N, k] arrays; [N, 2] ones are padded to 3D vectors)."""
    path = Path(path)
    point_data = {name: _as_vtk_array(values) for name, values in frame_fields.items()}
    point_data["node_type"] = np.asarray(node_type, dtype=np.int32)
    mesh = meshio.Mesh(
        _points3(mesh_pos), [("triangle", np.asarray(cells, dtype=np.int64))], point_data=point_data
    )
    # Uncompressed: zlib made files barely smaller (coordinates and connectivity don't compress)
    # and exports ten times slower.
    meshio.vtu.write(path, mesh, compression=None)
    return path


def write_pvd(entries: list[tuple[float, str]], path: str | Path) -> Path:
    """A ParaView collection: (time, VTU file name relative to the PVD) per frame."""
    root = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    collection = ET.SubElement(root, "Collection")
    for time, file in entries:
        attrs = {"timestep": repr(float(time)), "group": "", "part": "0", "file": file}
        ET.SubElement(collection, "DataSet", attrs)
    ET.indent(root)
    path = Path(path)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _frames(traj: Trajectory, every: int) -> range:
    if every < 1:
        raise DataFormatError(f"--every must be at least 1 (got {every})")
    return range(0, traj.num_steps, every)


def export_series(
    traj: Trajectory,
    out_dir: str | Path,
    *,
    every: int = 1,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    stem: str = "frame",
) -> Path:
    """Write ``<stem>_<step>.vtu`` for every ``every``-th frame and ``<stem>.pvd`` listing them with
    their simulated times; returns the PVD path.

    A cancelled export still leaves a valid PVD listing the frames written so far, so ParaView
    opens whatever was done.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = _frames(traj, every)
    gradient = VertexGradient.from_mesh(traj.mesh_pos, traj.cells)
    width = max(5, len(str(traj.num_steps - 1)))
    entries: list[tuple[float, str]] = []
    for done, t in enumerate(steps):
        if cancel is not None and cancel():
            break
        u, v = traj.velocity[t, :, 0], traj.velocity[t, :, 1]
        name = f"{stem}_{t:0{width}d}.vtu"
        fields = frame_point_data(u, v, traj.pressure[t], gradient)
        write_frame_vtu(traj.mesh_pos, traj.cells, traj.node_type, fields, out_dir / name)
        entries.append((float(traj.time[t]), name))
        if progress is not None:
            progress(done + 1, len(steps))
    return write_pvd(entries, out_dir / f"{stem}.pvd")


def _xdmf_item(h5_name: str, dataset: h5py.Dataset) -> ET.Element:
    kind = "Int" if dataset.dtype.kind in "iu" else "Float"
    item = ET.Element(
        "DataItem",
        DataType=kind,
        Precision=str(dataset.dtype.itemsize),
        Dimensions=" ".join(str(d) for d in dataset.shape),
        Format="HDF",
    )
    item.text = f"{h5_name}:{dataset.name}"
    return item


def export_xdmf(
    traj: Trajectory,
    path: str | Path,
    *,
    every: int = 1,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Path:
    """Write ``path`` (``.xdmf``), its arrays in the ``.h5`` beside it: a temporal collection with
    one grid per kept frame, all pointing at the same stored mesh. A cancelled export keeps the
    steps written so far.

    Written directly with h5py rather than meshio's TimeSeriesWriter, which puts the ``.h5`` in the
    current directory instead of beside the ``.xdmf``.
    """
    path = Path(path).with_suffix(".xdmf")
    path.parent.mkdir(parents=True, exist_ok=True)
    h5_path = path.with_suffix(".h5")
    steps = _frames(traj, every)
    gradient = VertexGradient.from_mesh(traj.mesh_pos, traj.cells)
    collection = ET.Element("Grid", Name="TimeSeries", GridType="Collection")
    collection.set("CollectionType", "Temporal")
    with h5py.File(h5_path, "w") as h5:
        points = h5.create_dataset("mesh/points", data=_points3(traj.mesh_pos))
        cells = h5.create_dataset("mesh/cells", data=np.asarray(traj.cells, dtype=np.int64))
        node_type = h5.create_dataset("mesh/node_type", data=traj.node_type.astype(np.int32))
        for done, t in enumerate(steps):
            if cancel is not None and cancel():
                break
            grid = ET.SubElement(collection, "Grid", Name=f"step_{t}", GridType="Uniform")
            topology = ET.SubElement(grid, "Topology", TopologyType="Triangle")
            topology.set("NumberOfElements", str(len(traj.cells)))
            topology.append(_xdmf_item(h5_path.name, cells))
            ET.SubElement(grid, "Geometry", GeometryType="XYZ").append(
                _xdmf_item(h5_path.name, points)
            )
            ET.SubElement(grid, "Time", Value=repr(float(traj.time[t])))
            u, v = traj.velocity[t, :, 0], traj.velocity[t, :, 1]
            arrays = frame_point_data(u, v, traj.pressure[t], gradient)
            for name, values in arrays.items():
                data = h5.create_dataset(
                    f"step_{t}/{name}", data=_as_vtk_array(values).astype(np.float32)
                )
                kind = "Vector" if data.ndim == 2 else "Scalar"
                attr = ET.SubElement(
                    grid, "Attribute", Name=name, AttributeType=kind, Center="Node"
                )
                attr.append(_xdmf_item(h5_path.name, data))
            attr = ET.SubElement(grid, "Attribute", Name="node_type", AttributeType="Scalar")
            attr.set("Center", "Node")
            attr.append(_xdmf_item(h5_path.name, node_type))
            if progress is not None:
                progress(done + 1, len(steps))
    root = ET.Element("Xdmf", Version="3.0")
    ET.SubElement(root, "Domain").append(collection)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
