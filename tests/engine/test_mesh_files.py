"""Mesh files: .vtu/.msh round trips, gmsh-made files, inferred boundaries, the mesh CLI."""

from __future__ import annotations

from pathlib import Path

import meshio
import numpy as np
import pytest
import pyvista as pv

from engine.cli import main
from engine.errors import DataFormatError, GeometryError
from engine.geometry import TunnelMesh, build_tunnel_mesh, load_mesh_file, write_mesh
from engine.geometry.tunnel import gmsh_session
from engine.nodetypes import NodeType
from engine.scenario import MeshSpec, Scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tandem() -> TunnelMesh:
    return build_tunnel_mesh(Scenario.load(ROOT / "assets" / "scenarios" / "tandem-cylinders.json"))


def _same_edges(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.unique(np.sort(a, 1), axis=0), np.unique(np.sort(b, 1), axis=0))


def _assert_same_mesh(got: TunnelMesh, want: TunnelMesh) -> None:
    np.testing.assert_allclose(got.points, want.points)
    assert np.array_equal(got.cells, want.cells)
    assert np.array_equal(got.node_type, want.node_type)
    assert set(got.boundary_edges) == set(want.boundary_edges)
    for name, edges in want.boundary_edges.items():
        assert _same_edges(got.boundary_edges[name], edges), name


@pytest.mark.parametrize("suffix", [".vtu", ".msh"])
def test_round_trip(tmp_path: Path, tandem: TunnelMesh, suffix: str) -> None:
    path = tmp_path / f"tandem{suffix}"
    write_mesh(tandem, path)
    _assert_same_mesh(load_mesh_file(path), tandem)


def test_boundaries_inferred_from_geometry_alone(tmp_path: Path, tandem: TunnelMesh) -> None:
    """A bare triangle mesh: sides of the box and inner loops give the same boundaries."""
    path = tmp_path / "bare.vtu"
    meshio.write(path, meshio.Mesh(np.column_stack([tandem.points, 0 * tandem.points[:, 0]]),
                                   [("triangle", tandem.cells)]))  # fmt: skip
    _assert_same_mesh(load_mesh_file(path), tandem)


def test_node_type_array_is_used_as_it_is(tmp_path: Path, tandem: TunnelMesh) -> None:
    custom = tandem.node_type.copy()
    custom[tandem.boundary_edges["walls"].ravel()] = NodeType.OUTFLOW  # e.g. open sides
    path = tmp_path / "typed.vtu"
    points = np.column_stack([tandem.points, 0 * tandem.points[:, 0]])
    typed = meshio.Mesh(points, [("triangle", tandem.cells)], point_data={"node_type": custom})
    meshio.write(path, typed)
    assert np.array_equal(load_mesh_file(path).node_type, custom)


def _gmsh_channel(path: Path, *, named: bool) -> None:
    """A real gmsh file: channel with a cylinder hole, optionally with named physical groups."""
    with gmsh_session() as gmsh:
        geo = gmsh.model.geo
        corners = [geo.addPoint(x, y, 0, 0.05) for x, y in ((0, 0), (1, 0), (1, 0.4), (0, 0.4))]
        sides = [geo.addLine(corners[k], corners[(k + 1) % 4]) for k in range(4)]
        c = geo.addPoint(0.3, 0.2, 0, 0.02)
        ring = [geo.addPoint(0.3 + 0.05 * np.cos(a), 0.2 + 0.05 * np.sin(a), 0, 0.02)
                for a in (0, np.pi / 2, np.pi, 3 * np.pi / 2)]  # fmt: skip
        arcs = [geo.addCircleArc(ring[k], c, ring[(k + 1) % 4]) for k in range(4)]
        surface = geo.addPlaneSurface([geo.addCurveLoop(sides), geo.addCurveLoop(arcs)])
        geo.synchronize()
        if named:
            gmsh.model.addPhysicalGroup(1, [sides[3]], name="Inlet")
            gmsh.model.addPhysicalGroup(1, [sides[1]], name="Outlet")
            gmsh.model.addPhysicalGroup(1, [sides[0], sides[2]], name="Walls")
            gmsh.model.addPhysicalGroup(1, arcs, name="Cylinder")
            gmsh.model.addPhysicalGroup(2, [surface], name="Fluid")
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))


@pytest.mark.parametrize("named", [True, False], ids=["physical-names", "untagged"])
def test_gmsh_written_msh(tmp_path: Path, named: bool) -> None:
    path = tmp_path / "channel.msh"
    _gmsh_channel(path, named=named)
    mesh = load_mesh_file(path)
    x, y = mesh.points.T
    assert mesh.num_obstacles == 1
    assert np.allclose(x[mesh.node_type == NodeType.INFLOW], 0.0)
    assert np.allclose(x[mesh.node_type == NodeType.OUTFLOW], 1.0)
    obstacle = mesh.nodes_of(NodeType.OBSTACLE)
    np.testing.assert_allclose(np.hypot(x[obstacle] - 0.3, y[obstacle] - 0.2), 0.05)
    corners = (np.isclose(x, 0) | np.isclose(x, 1)) & (np.isclose(y, 0) | np.isclose(y, 0.4))
    assert (mesh.node_type[corners] == NodeType.WALL_BOUNDARY).all()
    assert np.array_equal(np.unique(mesh.cells), np.arange(mesh.num_nodes))  # point 'c' dropped


def test_scenario_mesh_file_is_used_as_is(tmp_path: Path) -> None:
    _gmsh_channel(tmp_path / "channel.msh", named=True)
    scenario = Scenario(
        tunnel=Scenario().tunnel, mesh=MeshSpec(file="channel.msh"), base_dir=tmp_path
    )
    mesh = build_tunnel_mesh(scenario)
    assert mesh.num_obstacles == 1 and mesh.points[:, 0].max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "content", "error", "words"),
    [
        ("missing.vtu", None, GeometryError, "no such mesh file"),
        ("mesh.stl", b"solid x\nendsolid x\n", DataFormatError, "expected a .msh or .vtu"),
        ("truncated.msh", b"$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$Nodes\n1 4 1", DataFormatError,
         "cannot read"),
        ("garbage.vtu", b"<VTKFile type='Unstructured", DataFormatError, "cannot read"),
    ],
)  # fmt: skip
def test_broken_mesh_files(tmp_path: Path, name: str, content: bytes | None, error: type,
                           words: str) -> None:  # fmt: skip
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=words) as info:
        load_mesh_file(path)
    assert name in str(info.value)


def test_3d_and_quad_meshes_are_refused(tmp_path: Path) -> None:
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0.5], [0, 1, 0]], dtype=float)
    meshio.write(tmp_path / "warped.vtu", meshio.Mesh(pts, [("triangle", np.array([[0, 1, 2]]))]))
    with pytest.raises(DataFormatError, match="not a 2D mesh"):
        load_mesh_file(tmp_path / "warped.vtu")
    pts[:, 2] = 0
    meshio.write(tmp_path / "quad.vtu", meshio.Mesh(pts, [("quad", np.array([[0, 1, 2, 3]]))]))
    with pytest.raises(DataFormatError, match="quad"):
        load_mesh_file(tmp_path / "quad.vtu")


def test_mesh_cli_writes_vtu_for_meshio_and_pyvista(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dfg.vtu"
    assert main(["mesh", str(ROOT / "assets" / "scenarios" / "dfg-2d-2.json"), "-o", str(out)]) == 0
    report = capsys.readouterr().out
    reference = build_tunnel_mesh(Scenario.load(ROOT / "assets" / "scenarios" / "dfg-2d-2.json"))
    assert f"nodes {reference.num_nodes}" in report
    assert "min angle" in report and "meshed in" in report and "Re 100" in report

    by_meshio = meshio.read(out)
    assert np.array_equal(by_meshio.point_data["node_type"], reference.node_type)
    by_pyvista = pv.read(out)
    assert by_pyvista.n_points == reference.num_nodes
    assert np.array_equal(np.asarray(by_pyvista.point_data["node_type"]), reference.node_type)


def test_mesh_cli_reports_a_bad_scenario_without_traceback(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"obstacles": [{"shape": "circle", "center": [0.0, 0.2], "radius": 0.05}]}')
    assert main(["mesh", str(bad)]) == 2
    assert "obstacles[0]" in capsys.readouterr().err
