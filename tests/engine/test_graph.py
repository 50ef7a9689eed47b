"""Graph featurisation: adjacency powers, features, nondimensionalisation, normaliser, batching."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from engine.geometry import build_tunnel_mesh
from engine.graph import adjacency
from engine.graph.features import (
    GLOBAL_CONDITIONS,
    fourier_features,
    global_conditions,
    node_type_one_hot,
)
from engine.graph.normalizer import Normalizer
from engine.graph.static import GraphSpec, build_static_graph
from engine.graph.synthetic import structured_channel_mesh
from engine.nodetypes import NodeType
from engine.scenario import Circle, Fluid, Inflow, MeshSpec, Scenario, TimeSpec, Tunnel

SCENARIO = Scenario(
    obstacles=(Circle((0.2, 0.2), 0.05),), mesh=MeshSpec(size=0.06, obstacle_size=0.02)
)


@pytest.fixture(scope="module")
def mesh():
    return build_tunnel_mesh(SCENARIO)


def _pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.T.tolist()))


def test_mesh_edges_are_both_directions_of_the_mesh_edges(mesh) -> None:
    ei = adjacency.mesh_edge_index(mesh.cells)
    undirected = {tuple(e) for e in mesh.edges().tolist()}
    assert _pairs(ei) == undirected | {(j, i) for i, j in undirected}
    assert ei.shape[1] == 2 * len(undirected)


def test_khop_dilated_and_global_edges(mesh) -> None:
    n = mesh.num_nodes
    ei = adjacency.mesh_edge_index(mesh.cells)
    one, two = adjacency.khop_edge_index(ei, n, 1), adjacency.khop_edge_index(ei, n, 2)
    loops = {(i, i) for i in range(n)}
    assert _pairs(one) == _pairs(ei) | loops
    ring = _pairs(adjacency.dilated_edge_index(ei, n, 2))
    assert ring - loops == _pairs(two) - _pairs(one)  # exactly two hops away
    # node 0's two-hop ring is its neighbours' neighbours that are not its neighbours
    nbrs = {j for i, j in _pairs(ei) if i == 0}
    second = {k for i, k in _pairs(ei) if i in nbrs} - nbrs - {0}
    assert {j for i, j in ring if i == 0} - {0} == second
    hubs = torch.tensor([3, 7])
    glob = _pairs(adjacency.global_edge_index(hubs, n))
    assert all((3, k) in glob and (k, 7) in glob for k in range(n))
    merged = adjacency.merge_edge_indices(n, one, adjacency.global_edge_index(hubs, n))
    assert _pairs(merged) == _pairs(one) | glob
    assert merged.shape[1] == len(_pairs(merged))  # no duplicates


def test_features() -> None:
    one_hot = node_type_one_hot(torch.tensor([0, 4, 6]))
    assert one_hot.shape == (3, 9) and one_hot[1, 4] == 1 and one_hot.sum() == 3
    with pytest.raises(ValueError):
        node_type_one_hot(torch.tensor([9]))
    ff = fourier_features(torch.tensor([[0.0, 0.0], [4.0, 2.0]]), 3)
    assert ff.shape == (2, 12)
    assert torch.allclose(ff[0], torch.tensor([0.0] * 6 + [1.0] * 6))
    # the DFG 2D-2 case (Re 100, parabolic, no-slip, dt·Ū/L = 0.1) sits at the origin
    dfg = Scenario(obstacles=(Circle((0.2, 0.2), 0.05),), inflow=Inflow(mean_speed=1.0))
    expected = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])
    assert len(GLOBAL_CONDITIONS) == 5
    assert torch.allclose(global_conditions(dfg), expected, atol=1e-6)


def _scaled(s: Scenario, length: float, speed: float) -> Scenario:
    """The same flow in other units: lengths ×length, velocities ×speed, same Re and dt·Ū/L."""
    (c,) = s.obstacles
    return dataclasses.replace(
        s,
        tunnel=Tunnel(s.tunnel.length * length, s.tunnel.height * length, s.tunnel.walls),
        obstacles=(Circle((c.center[0] * length, c.center[1] * length), c.radius * length),),
        inflow=dataclasses.replace(
            s.inflow,
            mean_speed=s.inflow.mean_speed * speed,
            ramp_time=s.inflow.ramp_time * length / speed,
        ),
        fluid=Fluid(s.fluid.viscosity * length * speed, 1.2),
        time=TimeSpec(s.time.dt * length / speed, s.time.steps),
    )


def test_static_graph_is_unit_free(mesh) -> None:
    spec = GraphSpec(fourier_frequencies=2)
    scenario_mm = _scaled(SCENARIO, 1000.0, 30.0)
    mesh_mm = dataclasses.replace(mesh, points=mesh.points * 1000.0)
    a = build_static_graph(mesh, SCENARIO, spec)
    b = build_static_graph(mesh_mm, scenario_mm, spec)
    keys = (
        "pos",
        "edge_attr",
        "node_attr",
        "velocity_mask",
        "edge_index",
        "inflow_index",
        "inflow_profile",
    )
    for key in keys:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key
    assert b.velocity_scale == pytest.approx(30.0)
    assert b.pressure_scale == pytest.approx(1.2 * 30.0**2)
    assert a.node_attr.shape == (mesh.num_nodes, 9 + 5 + 8)


def test_static_graph_masks_and_optional_edges(mesh) -> None:
    g = build_static_graph(mesh, SCENARIO, GraphSpec(attention_hops=1, dilation=2, global_nodes=3))
    nt = torch.from_numpy(mesh.node_type)
    computed = (nt == NodeType.NORMAL) | (nt == NodeType.OUTFLOW)
    assert torch.equal(g.velocity_mask.bool(), computed[:, None].expand(-1, 2))
    assert set(g.inflow_index.tolist()) == set(np.flatnonzero(mesh.node_type == NodeType.INFLOW))
    assert "attn_edge_index" in g and "dilated_edge_index" in g
    hub_rows = torch.bincount(g.attn_edge_index[0], minlength=g.num_nodes)
    assert (hub_rows == g.num_nodes).sum() == 3  # three inflow hubs see every node
    assert nt[hub_rows == g.num_nodes].eq(NodeType.INFLOW).all()
    slip = dataclasses.replace(SCENARIO, tunnel=Tunnel(walls="slip"))
    mask = build_static_graph(mesh, slip, GraphSpec()).velocity_mask
    walls = nt == NodeType.WALL_BOUNDARY
    assert mask[walls, 0].eq(1).all() and mask[walls, 1].eq(0).all()
    plain = build_static_graph(mesh, SCENARIO, GraphSpec())
    assert "attn_edge_index" not in plain and "dilated_edge_index" not in plain


def test_graph_spec_rejects_inconsistent_settings() -> None:
    with pytest.raises(ValueError):
        GraphSpec(dilation=1)
    with pytest.raises(ValueError):
        GraphSpec(global_nodes=2)


def test_batching_graphs_of_different_sizes_offsets_every_edge_set(mesh) -> None:
    spec = GraphSpec(attention_hops=1, dilation=2, global_nodes=2)
    small = build_static_graph(structured_channel_mesh(200), SCENARIO, spec)
    big = build_static_graph(mesh, SCENARIO, spec)
    batch = Batch.from_data_list([small, big])
    n0 = small.num_nodes
    assert batch.num_nodes == n0 + big.num_nodes
    for key in ("edge_index", "attn_edge_index", "dilated_edge_index", "inflow_index"):
        assert torch.equal(batch[key][..., -1], big[key][..., -1] + n0), key
    assert batch.batch.bincount().tolist() == [n0, big.num_nodes]


def test_normalizer_matches_full_statistics_when_fed_in_chunks() -> None:
    torch.manual_seed(0)
    data = torch.randn(1000, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    norm = Normalizer(3, max_accumulations=100)
    assert torch.equal(norm(data), data)  # identity before any statistics
    for chunk in data.split(37):
        norm.accumulate(chunk)
    assert torch.allclose(norm.mean, data.mean(0), atol=1e-5)
    assert torch.allclose(norm.std, data.std(0, unbiased=False), rtol=1e-5)
    z = norm(data)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(norm.inverse(z), data, atol=1e-5)
    clone = Normalizer(3)
    clone.load_state_dict(norm.state_dict())
    assert torch.allclose(clone(data), z)
    with pytest.raises(ValueError, match=r"\[num, 3\]"):
        norm(torch.zeros(4, 2))


def test_normalizer_stops_after_max_accumulations() -> None:
    norm = Normalizer(1, max_accumulations=2)
    for value in (0.0, 2.0, 100.0):
        norm.accumulate(torch.full((4, 1), value))
    assert norm.mean.item() == pytest.approx(1.0)
    assert norm.count.item() == 8


def test_synthetic_channel_mesh() -> None:
    m = structured_channel_mesh(2000)
    assert 1900 <= m.num_nodes <= 2100
    types = set(np.unique(m.node_type).tolist())
    assert types == {
        NodeType.NORMAL,
        NodeType.OBSTACLE,
        NodeType.INFLOW,
        NodeType.OUTFLOW,
        NodeType.WALL_BOUNDARY,
    }
    assert set(m.boundary_edges) == {"inflow", "outflow", "walls", "obstacle-0"}
    assert np.all(np.isin(m.boundary_edges["obstacle-0"], m.nodes_of(NodeType.OBSTACLE)))
    p = m.points[m.cells]
    cross = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (
        p[:, 2, 0] - p[:, 0, 0]
    )
    assert (cross > 0).all()  # counter-clockwise, as TunnelMesh promises
