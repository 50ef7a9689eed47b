"""Importing VTU/PVD time series written by other tools (here: by meshio and by our exporter)."""

from __future__ import annotations

from pathlib import Path

import meshio
import numpy as np
import pytest
import pyvista as pv
from pyvista import CellType

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.geometry import TunnelMesh, build_tunnel_mesh
from engine.io.boundaries import infer_boundary_edges, infer_node_types
from engine.io.vtk import export_series, write_pvd
from engine.io.vtu_series import read_vtu_series
from engine.nodetypes import NodeType
from engine.scenario import Scenario


@pytest.fixture(scope="module")
def mesh() -> TunnelMesh:
    scenario = Scenario.load(Path(__file__).parents[2] / "assets/scenarios/tandem-cylinders.json")
    data = scenario.to_dict()
    data["mesh"]["size"] = 0.06
    return build_tunnel_mesh(Scenario.from_dict(data))


def flow(mesh: TunnelMesh, k: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    return np.stack([1 + k * y, k * x], axis=-1).astype(np.float32), (k - x).astype(np.float32)


def write_vtu(path: Path, mesh: TunnelMesh, point_data: dict, **kwargs) -> None:
    pts = np.column_stack([mesh.points, np.full(mesh.num_nodes, 0.5)])  # a plane at z = 0.5
    meshio.write(
        path, meshio.Mesh(pts, [("triangle", mesh.cells)], point_data=point_data, **kwargs)
    )


def test_inferred_node_types_match_the_mesher(mesh: TunnelMesh) -> None:
    np.testing.assert_array_equal(infer_node_types(mesh.points, mesh.cells), mesh.node_type)
    edges = infer_boundary_edges(mesh.points, mesh.cells)
    assert sorted(edges) == sorted(mesh.boundary_edges)
    for name, expected in mesh.boundary_edges.items():
        assert {tuple(sorted(e)) for e in edges[name]} == {tuple(sorted(e)) for e in expected}


def test_our_export_imports_back_unchanged(mesh: TunnelMesh, tmp_path: Path) -> None:
    steps = 3
    velocity, pressure = zip(*(flow(mesh, k) for k in range(steps)), strict=True)
    original = Trajectory(
        mesh_pos=mesh.points,
        cells=mesh.cells,
        node_type=np.where(mesh.node_type == NodeType.INFLOW, 3, mesh.node_type),  # from the file
        velocity=np.stack(velocity),
        pressure=np.stack(pressure),
        time=np.array([0.25, 0.5, 0.75]),
        forces=np.zeros((steps, 2, 2)),
        coefficients=np.zeros((steps, 2, 2)),
    )
    pvd = export_series(original, tmp_path)
    got = read_vtu_series(pvd)
    np.testing.assert_allclose(got.mesh_pos, original.mesh_pos)
    np.testing.assert_array_equal(got.cells, original.cells)
    np.testing.assert_array_equal(got.node_type, original.node_type)
    np.testing.assert_array_equal(got.velocity, original.velocity)
    np.testing.assert_array_equal(got.pressure, original.pressure)
    np.testing.assert_allclose(got.time, original.time)
    assert got.attrs["source"] == "vtu-series"


def test_foreign_folder_with_other_names(mesh: TunnelMesh, tmp_path: Path) -> None:
    for k in (2, 10, 1):  # natural order, not alphabetical: out_1, out_2, out_10
        u, p = flow(mesh, k)
        write_vtu(
            tmp_path / f"out_{k}.vtu", mesh, {"U": np.column_stack([u, np.zeros(len(u))]), "p": p}
        )
    got = read_vtu_series(tmp_path, dt=0.1)
    np.testing.assert_allclose(got.time, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(got.velocity[2], flow(mesh, 10)[0])
    np.testing.assert_allclose(got.pressure[1], flow(mesh, 2)[1])
    np.testing.assert_array_equal(got.node_type, mesh.node_type)

    clockwise = read_vtu_series(tmp_path / "out_1*.vtu")  # a glob; out_1 and out_10
    assert clockwise.num_steps == 2


def test_scalar_components_and_time_values(mesh: TunnelMesh, tmp_path: Path) -> None:
    # VTK (ParaView's "Save Data" of a series) stores each file's time as TimeValue field data.
    pts = np.column_stack([mesh.points, np.zeros(mesh.num_nodes)])
    for k, t in enumerate([0.3, 0.7]):
        u, p = flow(mesh, k)
        grid = pv.UnstructuredGrid({CellType.TRIANGLE: mesh.cells}, pts)
        grid.point_data["Ux"], grid.point_data["Uy"], grid.point_data["pressure"] = (
            u.T[0],
            u.T[1],
            p,
        )
        grid.field_data["TimeValue"] = [t]
        grid.save(tmp_path / f"s{k}.vtu")
    got = read_vtu_series(tmp_path)
    np.testing.assert_allclose(got.time, [0.3, 0.7])
    np.testing.assert_allclose(got.velocity[1], flow(mesh, 1)[0])


def test_quads_and_cell_data(tmp_path: Path) -> None:
    xs, ys = np.meshgrid(np.linspace(0, 2, 5), np.linspace(0, 1, 3))
    pts = np.column_stack([xs.ravel(), ys.ravel()])
    i = np.arange(15).reshape(3, 5)
    quads = np.stack([i[:-1, :-1], i[:-1, 1:], i[1:, 1:], i[1:, :-1]], axis=-1).reshape(-1, 4)
    n_quads = len(quads)
    cell_data = {
        "velocity": [np.tile([1.0, -2.0, 0.0], (n_quads, 1))],
        "p": [np.full(n_quads, 3.0)],
    }
    meshio.write(tmp_path / "q.vtu", meshio.Mesh(pts, [("quad", quads)], cell_data=cell_data))
    got = read_vtu_series(tmp_path / "q.vtu")
    assert got.cells.shape == (2 * n_quads, 3)
    np.testing.assert_allclose(got.velocity[0], np.tile([1.0, -2.0], (15, 1)))
    np.testing.assert_allclose(got.pressure[0], 3.0)
    assert (got.node_type[pts[:, 0] == 0] != NodeType.NORMAL).all()
    assert got.node_type[7] == NodeType.NORMAL


def test_broken_inputs_name_the_file(mesh: TunnelMesh, tmp_path: Path) -> None:
    u, p = flow(mesh, 1)
    tet = meshio.Mesh(
        np.eye(4, 3), [("tetra", np.array([[0, 1, 2, 3]]))], point_data={"p": np.ones(4)}
    )
    meshio.write(tmp_path / "solid.vtu", tet)
    with pytest.raises(DataFormatError, match=r"solid.vtu: has 3D cells \(tetra\)"):
        read_vtu_series(tmp_path / "solid.vtu")

    write_vtu(tmp_path / "nop.vtu", mesh, {"velocity": u})
    with pytest.raises(DataFormatError, match=r"nop.vtu: no pressure array .*found: velocity"):
        read_vtu_series(tmp_path / "nop.vtu")

    write_vtu(tmp_path / "ok.vtu", mesh, {"velocity": u, "p": p})
    raw = (tmp_path / "ok.vtu").read_bytes()
    (tmp_path / "cut.vtu").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.vtu: not a readable VTU file"):
        read_vtu_series(tmp_path / "cut.vtu")

    pvd = write_pvd([(0.0, "ok.vtu"), (1.0, "gone.vtu")], tmp_path / "s.pvd")
    with pytest.raises(DataFormatError, match=r"gone\.vtu: not a readable VTU file"):
        read_vtu_series(pvd)

    small = meshio.Mesh(
        mesh.points[:3],
        [("triangle", np.array([[0, 1, 2]]))],
        point_data={"velocity": u[:3], "p": p[:3]},
    )
    meshio.write(tmp_path / "small.vtu", small)
    pvd = write_pvd([(0.0, "ok.vtu"), (1.0, "small.vtu")], tmp_path / "t.pvd")
    with pytest.raises(DataFormatError, match=r"small\.vtu: the mesh differs from ok\.vtu"):
        read_vtu_series(pvd)

    with pytest.raises(DataFormatError, match="no such file"):
        read_vtu_series(tmp_path / "missing.pvd")


def test_import_command(mesh: TunnelMesh, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for k in range(2):
        u, p = flow(mesh, k)
        write_vtu(tmp_path / f"run_{k}.vtu", mesh, {"velocity": u, "p": p})
    pvd = write_pvd([(0.0, "run_0.vtu"), (0.05, "run_1.vtu")], tmp_path / "run.pvd")
    assert main(["import", str(pvd), "-o", str(tmp_path / "out" / "run.h5")]) == 0
    np.testing.assert_allclose(Trajectory.load(tmp_path / "out" / "run.h5").time, [0.0, 0.05])

    assert main(["import", str(tmp_path / "run_*.vtu"), "-o", str(tmp_path / "ds")]) == 0
    assert (tmp_path / "ds" / "run_.h5").exists() and (tmp_path / "ds" / "manifest.json").exists()

    (tmp_path / "notes.txt").write_text("hello")
    assert main(["import", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "x.h5")]) == 2
    assert "cannot import .txt files" in capsys.readouterr().err
