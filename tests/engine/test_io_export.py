"""Export to VTU/PVD and XDMF, read back by meshio and pyvista; the vorticity operator."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import gmsh
import meshio
import numpy as np
import pytest
import pyvista as pv

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.io.derived import VertexGradient, vorticity
from engine.io.vtk import export_series, export_xdmf, write_frame_vtu


def gmsh_tunnel(size: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """A real gmsh triangle mesh: a 2 x 1 tunnel with a round hole, vertices numbered 0..N-1."""
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        occ = gmsh.model.occ
        tunnel = occ.addRectangle(0, 0, 0, 2.0, 1.0)
        hole = occ.addDisk(0.6, 0.5, 0, 0.15, 0.15)
        occ.cut([(2, tunnel)], [(2, hole)])
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.model.mesh.generate(2)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        _, _, tri_nodes = gmsh.model.mesh.getElements(2)
    finally:
        gmsh.finalize()
    index = {int(t): i for i, t in enumerate(tags)}
    points = coords.reshape(-1, 3)[:, :2]
    cells = np.array([index[int(t)] for t in tri_nodes[0]], dtype=np.int64).reshape(-1, 3)
    return points, cells


@pytest.fixture(scope="module")
def traj() -> Trajectory:
    points, cells = gmsh_tunnel()
    steps = 5
    time = 0.02 * np.arange(steps) + 0.5
    x, y = points[:, 0], points[:, 1]
    velocity = np.stack([np.stack([1 + k * y, -0.1 * k * x], axis=-1) for k in range(steps)])
    pressure = np.stack([k - x for k in range(steps)])
    node_type = np.where(x < 1e-9, 4, 0)
    return Trajectory(
        mesh_pos=points,
        cells=cells,
        node_type=node_type.astype(np.int64),
        velocity=velocity.astype(np.float32),
        pressure=pressure.astype(np.float32),
        time=time,
        forces=np.zeros((steps, 1, 2)),
        coefficients=np.zeros((steps, 1, 2)),
    ).validate()


def test_vorticity_of_solid_body_rotation_is_two() -> None:
    points, cells = gmsh_tunnel()
    omega = vorticity(points, cells, -points[:, 1], points[:, 0])
    np.testing.assert_allclose(omega, 2.0, atol=1e-9)


def test_vertex_gradient_handles_many_fields_and_orientation() -> None:
    points, cells = gmsh_tunnel()
    grad = VertexGradient.from_mesh(points, cells[:, ::-1])  # clockwise cells: same gradient
    f = np.column_stack([3 * points[:, 0] - points[:, 1], points[:, 1]])
    np.testing.assert_allclose(grad.dx @ f, [[3.0, 0.0]] * len(points), atol=1e-9)
    np.testing.assert_allclose(grad.dy @ f, [[-1.0, 1.0]] * len(points), atol=1e-9)


def test_series_reads_back_in_meshio_and_pyvista(traj: Trajectory, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    pvd = export_series(traj, tmp_path, every=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]

    entries = ET.parse(pvd).getroot().find("Collection")
    times = [float(e.get("timestep")) for e in entries]
    np.testing.assert_allclose(times, traj.time[::2])

    mesh = meshio.read(tmp_path / entries[1].get("file"))
    np.testing.assert_allclose(mesh.points[:, :2], traj.mesh_pos)
    np.testing.assert_array_equal(mesh.cells_dict["triangle"], traj.cells)
    pd = mesh.point_data
    np.testing.assert_allclose(pd["velocity"][:, :2], traj.velocity[2])
    np.testing.assert_allclose(pd["velocity"][:, 2], 0.0)
    np.testing.assert_allclose(pd["pressure"], traj.pressure[2])
    np.testing.assert_allclose(pd["speed"], np.hypot(*traj.velocity[2].T), rtol=1e-6)
    np.testing.assert_array_equal(pd["node_type"], traj.node_type)
    # u = 1 + 2y, v = -0.2x  =>  ω = -0.2 - 2
    np.testing.assert_allclose(pd["vorticity"], -2.2, atol=1e-5)

    reader = pv.get_reader(str(pvd))
    np.testing.assert_allclose(reader.time_values, traj.time[::2])
    reader.set_active_time_value(reader.time_values[2])
    grid = reader.read()[0]
    np.testing.assert_allclose(grid.point_data["u"], traj.velocity[4, :, 0])
    np.testing.assert_allclose(grid.point_data["pressure"], traj.pressure[4])


def test_cancelled_series_leaves_a_valid_partial_pvd(traj: Trajectory, tmp_path: Path) -> None:
    written: list[int] = []
    pvd = export_series(
        traj, tmp_path, progress=lambda d, t: written.append(d), cancel=lambda: len(written) >= 2
    )
    assert len(list(tmp_path.glob("*.vtu"))) == 2
    np.testing.assert_allclose(pv.get_reader(str(pvd)).time_values, traj.time[:2])


def test_xdmf_reads_back(traj: Trajectory, tmp_path: Path) -> None:
    path = export_xdmf(traj, tmp_path / "run.xdmf")
    assert path.with_suffix(".h5").exists()
    with meshio.xdmf.TimeSeriesReader(path) as reader:
        points, cells = reader.read_points_cells()
        np.testing.assert_allclose(points[:, :2], traj.mesh_pos)
        np.testing.assert_array_equal(cells[0].data, traj.cells)
        assert reader.num_steps == traj.num_steps
        for k in range(reader.num_steps):
            t, point_data, _ = reader.read_data(k)
            assert t == pytest.approx(traj.time[k])
            np.testing.assert_allclose(point_data["velocity"][:, :2], traj.velocity[k])
            np.testing.assert_allclose(point_data["pressure"], traj.pressure[k])

    reader = pv.get_reader(str(path))  # VTK's XDMF reader, the one ParaView uses
    np.testing.assert_allclose(reader.time_values, traj.time)
    reader.set_active_time_value(reader.time_values[3])
    grid = reader.read()
    np.testing.assert_allclose(grid.point_data["v"], traj.velocity[3, :, 1])
    np.testing.assert_array_equal(grid.point_data["node_type"], traj.node_type)


def test_single_frame_vtu_with_custom_fields(tmp_path: Path) -> None:
    points, cells = gmsh_tunnel()
    path = write_frame_vtu(
        points, cells, np.zeros(len(points)), {"probe": points[:, 0]}, tmp_path / "one.vtu"
    )
    grid = pv.read(path)
    assert grid.n_points == len(points) and grid.n_cells == len(cells)
    np.testing.assert_allclose(grid.point_data["probe"], points[:, 0])


def test_every_must_be_positive(traj: Trajectory, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="every"):
        export_series(traj, tmp_path, every=0)


def test_export_command(traj: Trajectory, tmp_path: Path) -> None:
    source = traj.save(tmp_path / "run.h5")
    assert main(["export", str(source), "-o", str(tmp_path / "vtk"), "--every", "2"]) == 0
    reader = pv.get_reader(str(tmp_path / "vtk" / "run.pvd"))
    np.testing.assert_allclose(reader.time_values, traj.time[::2])
    assert main(["export", str(source), "-o", str(tmp_path / "x"), "--xdmf"]) == 0
    with meshio.xdmf.TimeSeriesReader(tmp_path / "x" / "run.xdmf") as xdmf:
        assert xdmf.num_steps == traj.num_steps


def test_cancelled_xdmf_keeps_the_steps_written(traj: Trajectory, tmp_path: Path) -> None:
    done: list[int] = []
    path = export_xdmf(
        traj,
        tmp_path / "run",
        every=2,
        progress=lambda d, t: done.append(d),
        cancel=lambda: len(done) >= 2,
    )
    assert path.name == "run.xdmf"
    np.testing.assert_allclose(pv.get_reader(str(path)).time_values, traj.time[[0, 2]])
