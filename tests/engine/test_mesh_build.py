"""Tunnel meshing of every preset: node types, closed obstacle loops, quality, threads, errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ScenarioError
from engine.geometry import TunnelMesh, build_tunnel_mesh, mesh_quality
from engine.geometry.meshfile import edge_components, free_edges
from engine.geometry.quality import triangle_areas
from engine.nodetypes import NodeType
from engine.scenario import Circle, Scenario, default_scenario

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "assets" / "scenarios").glob("*.json"))
REQUIRED_PRESETS = {
    "dfg-2d-2", "naca0012-5deg", "naca2412-10deg", "tandem-cylinders", "square-45deg",
    "ellipse", "file-airfoil", "three-obstacles",
}  # fmt: skip


Meshes = dict[str, tuple[Scenario, TunnelMesh]]


@pytest.fixture(scope="module")
def meshes() -> Meshes:
    out = {}
    for path in PRESETS:
        scenario = Scenario.load(path)
        out[path.stem] = (scenario, build_tunnel_mesh(scenario))
    return out


def test_all_required_presets_ship() -> None:
    assert {p.stem for p in PRESETS} >= REQUIRED_PRESETS


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_preset_settings(name: str) -> None:
    scenario = Scenario.load(ROOT / "assets" / "scenarios" / f"{name}.json")
    assert 50 <= scenario.reynolds <= 200
    assert scenario.time.dt == 0.01 and scenario.time.steps == 600


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_preset_mesh_structure(meshes: Meshes, name: str) -> None:
    scenario, mesh = meshes[name]
    length, height = scenario.tunnel.length, scenario.tunnel.height
    assert 1500 <= mesh.num_nodes <= 4000
    assert mesh.points.dtype == np.float64 and mesh.cells.dtype == np.int64
    # P1 triangles, counter-clockwise, every vertex used
    assert mesh.cells.shape[1] == 3
    assert (triangle_areas(mesh.points, mesh.cells) > 0).all()
    assert np.array_equal(np.unique(mesh.cells), np.arange(mesh.num_nodes))
    # node types on the right boundaries
    x, y, kind = mesh.points[:, 0], mesh.points[:, 1], mesh.node_type
    assert set(np.unique(kind)) == {
        NodeType.NORMAL, NodeType.OBSTACLE, NodeType.INFLOW, NodeType.OUTFLOW,
        NodeType.WALL_BOUNDARY,
    }  # fmt: skip
    assert np.allclose(x[kind == NodeType.INFLOW], 0.0)
    assert np.allclose(x[kind == NodeType.OUTFLOW], length)
    on_wall = np.isclose(y, 0.0) | np.isclose(y, height)
    assert on_wall[kind == NodeType.WALL_BOUNDARY].all()
    assert (kind[on_wall] == NodeType.WALL_BOUNDARY).all()  # corners included
    interior = (x > 1e-9) & (x < length - 1e-9) & ~on_wall
    assert set(np.unique(kind[interior])) == {NodeType.NORMAL, NodeType.OBSTACLE}
    # boundary edges cover the whole domain boundary exactly once
    named = np.sort(np.concatenate(list(mesh.boundary_edges.values())), axis=1)
    assert np.array_equal(np.unique(named, axis=0), free_edges(mesh.cells))
    assert len(named) == len(free_edges(mesh.cells))
    assert mesh.num_obstacles == len(scenario.obstacles)


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_each_obstacle_boundary_is_one_closed_loop(meshes: Meshes, name: str) -> None:
    scenario, mesh = meshes[name]
    for i in range(len(scenario.obstacles)):
        edges = mesh.obstacle_edges(i)
        assert len(edge_components(edges)) == 1
        degree = np.bincount(edges.ravel(), minlength=mesh.num_nodes)
        assert set(np.unique(degree[degree > 0])) == {2}  # every vertex joins exactly two edges
        assert (mesh.node_type[np.unique(edges)] == NodeType.OBSTACLE).all()
    obstacle_nodes = np.unique(
        np.concatenate([mesh.obstacle_edges(i) for i in range(mesh.num_obstacles)])
    )
    assert np.array_equal(obstacle_nodes, mesh.nodes_of(NodeType.OBSTACLE))


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_preset_mesh_quality(meshes: Meshes, name: str) -> None:
    _, mesh = meshes[name]
    quality = mesh_quality(mesh)
    assert quality.min_angle_deg > 20.0
    assert quality.max_aspect_ratio < 2.5
    assert quality.min_area > 0
    assert quality.node_type_counts["OBSTACLE"] == len(mesh.nodes_of(NodeType.OBSTACLE))
    assert f"nodes {mesh.num_nodes}" in str(quality)


def test_obstacle_surface_and_far_field_sizes() -> None:
    scenario = default_scenario()
    mesh = build_tunnel_mesh(scenario)
    p = mesh.points
    cylinder = mesh.obstacle_edges(0)
    lengths = np.linalg.norm(p[cylinder[:, 0]] - p[cylinder[:, 1]], axis=1)
    assert lengths.max() <= scenario.mesh.obstacle_size * 1.05
    walls = mesh.boundary_edges["walls"]
    wall_lengths = np.linalg.norm(p[walls[:, 0]] - p[walls[:, 1]], axis=1)
    assert np.median(wall_lengths) == pytest.approx(scenario.mesh.size, rel=0.1)
    # the cylinder outline is kept: its vertices lie on the circle
    r = np.hypot(p[np.unique(cylinder), 0] - 0.2, p[np.unique(cylinder), 1] - 0.2)
    np.testing.assert_allclose(r, 0.05, rtol=2e-5)


def test_wake_is_finer_than_the_far_field() -> None:
    mesh = build_tunnel_mesh(default_scenario())
    centroids = mesh.points[mesh.cells].mean(axis=1)
    area = triangle_areas(mesh.points, mesh.cells)
    wake = (
        (centroids[:, 0] > 0.35) & (centroids[:, 0] < 0.6) & (np.abs(centroids[:, 1] - 0.2) < 0.04)
    )
    far = centroids[:, 0] > 1.5
    assert area[wake].mean() < 0.6 * area[far].mean()


def test_meshing_is_deterministic() -> None:
    scenario = Scenario.load(ROOT / "assets" / "scenarios" / "three-obstacles.json")
    a, b = build_tunnel_mesh(scenario), build_tunnel_mesh(scenario)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.cells, b.cells)


def test_meshing_works_in_worker_threads() -> None:
    scenario = default_scenario()
    reference = build_tunnel_mesh(scenario)
    results: list[TunnelMesh | BaseException] = []

    def work() -> None:
        try:
            results.append(build_tunnel_mesh(scenario))
        except BaseException as exc:  # surfaced to the main thread's assertion below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    for mesh in results:
        assert isinstance(mesh, TunnelMesh)
        assert np.array_equal(mesh.cells, reference.cells)


def test_empty_tunnel_meshes() -> None:
    mesh = build_tunnel_mesh(Scenario())
    assert mesh.num_obstacles == 0
    assert NodeType.OBSTACLE not in set(mesh.node_type.tolist())


def test_meshing_validates_first() -> None:
    bad = Scenario(obstacles=(Circle((0.2, 0.2), 0.05), Circle((0.25, 0.2), 0.05)))
    with pytest.raises(ScenarioError, match=r"obstacles\[1\]"):
        build_tunnel_mesh(bad)
