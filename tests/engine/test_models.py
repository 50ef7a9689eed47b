"""The three networks: constructors, golden outputs, permutation equivariance, shape checks."""

from __future__ import annotations

import pytest
import torch

from engine.graph.adjacency import dilated_edge_index, khop_edge_index, mesh_edge_index
from engine.graph.features import edge_features
from engine.graph.synthetic import structured_channel_mesh
from engine.models.graph_transformer import PRESETS, GraphTransformer, graph_transformer_preset
from engine.models.meshgraphnet import MeshGraphNet
from engine.models.physgto import PhysGTO


@pytest.fixture(scope="module")
def graph() -> dict[str, torch.Tensor]:
    """A 39-node channel with a square hole, fixed random node inputs."""
    mesh = structured_channel_mesh(40)
    pos = torch.from_numpy(mesh.points).float() * 10
    ei = mesh_edge_index(mesh.cells)
    n = mesh.num_nodes
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(1))
    return {
        "x": x, "pos": pos, "edge_index": ei, "edge_attr": edge_features(pos, ei),
        "attn": khop_edge_index(ei, n, 1), "dilated": dilated_edge_index(ei, n, 2),
    }  # fmt: skip


def _mgn() -> MeshGraphNet:
    torch.manual_seed(0)
    return MeshGraphNet(node_in=6, edge_in=3, out=3, latent=16, num_blocks=2)


def _gt() -> GraphTransformer:
    torch.manual_seed(0)
    return GraphTransformer(node_in=6, out=3, dim=16, num_layers=2, heads=4, dilated_heads=1)


def _gto() -> PhysGTO:
    torch.manual_seed(0)
    return PhysGTO(state_in=3, attr_in=3, edge_in=3, out=3, dim=16, num_blocks=2, heads=4,
                   num_tokens=4)  # fmt: skip


def _run(name: str, model: torch.nn.Module, g: dict[str, torch.Tensor]) -> torch.Tensor:
    if name == "meshgraphnet":
        return model(g["x"], g["edge_index"], g["edge_attr"])
    if name == "graph_transformer":
        return model(g["x"], g["pos"], g["attn"], g["dilated"])
    return model(g["x"][:, :3], g["x"][:, 3:], g["edge_index"], g["edge_attr"])


MODELS = {"meshgraphnet": _mgn, "graph_transformer": _gt, "physgto": _gto}
GOLDEN = {  # first three nodes' outputs, recorded with torch 2.13 on a CPU
    "meshgraphnet": [[0.25136796, 0.02874027, 0.41612101],
                     [0.23867156, 0.06128302, 0.43081939],
                     [0.30462831, 0.10048179, 0.39341709]],
    "graph_transformer": [[-0.03356938, 0.41012946, -0.07228474],
                          [0.02388970, 0.06992780, 0.00684975],
                          [-0.03038654, 0.08253521, -0.02963557]],
    "physgto": [[0.01152729, -0.01409608, 0.02199648],
                [0.01014974, -0.01482813, 0.01841706],
                [0.00397965, -0.00947108, 0.01501281]],
}  # fmt: skip


@pytest.mark.parametrize("name", MODELS)
def test_seeded_golden_output(name: str, graph) -> None:
    out = _run(name, MODELS[name](), graph)
    assert out.shape == (graph["x"].shape[0], 3)
    assert torch.allclose(out[:3], torch.tensor(GOLDEN[name]), atol=2e-5)


@pytest.mark.parametrize("name", MODELS)
def test_permutation_equivariance(name: str, graph) -> None:
    """Renumbering the nodes renumbers the outputs and changes nothing else."""
    model = MODELS[name]()
    n = graph["x"].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(3))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)  # new index of old node i

    def relabel(ei: torch.Tensor) -> torch.Tensor:
        ei = inverse[ei]
        return ei[:, torch.randperm(ei.shape[1], generator=torch.Generator().manual_seed(4))]

    permuted = {"x": graph["x"][perm], "pos": graph["pos"][perm]}
    order = torch.randperm(graph["edge_index"].shape[1], generator=torch.Generator().manual_seed(4))
    permuted["edge_index"] = inverse[graph["edge_index"]][:, order]
    permuted["edge_attr"] = graph["edge_attr"][order]
    permuted["attn"], permuted["dilated"] = relabel(graph["attn"]), relabel(graph["dilated"])
    out, out_perm = _run(name, model, graph), _run(name, model, permuted)
    assert torch.allclose(out[perm], out_perm, atol=1e-5)


def test_meshgraphnet_defaults_follow_the_paper() -> None:
    model = MeshGraphNet(node_in=12, edge_in=3, out=3)
    assert len(model.blocks) == 15
    assert model.node_encoder[0].out_features == 128
    assert isinstance(model.blocks[0].edge_mlp[-1], torch.nn.LayerNorm)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in model.decoder)
    assert len({id(b.node_mlp[0].weight) for b in model.blocks}) == 15  # weights not shared


def test_graph_transformer_presets_grow_and_dilation_sits_on_some_layers() -> None:
    sizes = [
        sum(p.numel() for p in GraphTransformer(node_in=8, out=3, **PRESETS[s]).parameters())
        for s in ("tiny", "small", "base", "large")
    ]
    assert sizes == sorted(sizes) and sizes[0] < 300_000
    model = GraphTransformer(node_in=8, out=3, **graph_transformer_preset("tiny"))
    assert [layer.attention.dilated_heads for layer in model.layers] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="unknown size"):
        graph_transformer_preset("huge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible"):
        GraphTransformer(node_in=8, out=3, dim=30, heads=4)
    assert not GraphTransformer(node_in=8, out=3, dilated_every=0).uses_dilation


def test_physgto_starts_with_small_gain_and_keeps_graphs_apart(graph) -> None:
    model = _gto()
    assert torch.allclose(model.gain, torch.full((3,), 0.1))
    n = graph["x"].shape[0]
    ei, ea = graph["edge_index"], graph["edge_attr"]
    single = model(graph["x"][:, :3], graph["x"][:, 3:], ei, ea)
    other = torch.randn(n, 6, generator=torch.Generator().manual_seed(9))
    both = model(
        torch.cat([graph["x"][:, :3], other[:, :3]]), torch.cat([graph["x"][:, 3:], other[:, 3:]]),
        torch.cat([ei, ei + n], dim=1), torch.cat([ea, ea]),
        torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)]),
    )  # fmt: skip
    assert torch.allclose(both[:n], single, atol=1e-5)  # tokens never see the other graph


def test_shape_errors_are_clear(graph) -> None:
    x, ei, ea = graph["x"], graph["edge_index"], graph["edge_attr"]
    with pytest.raises(ValueError, match=r"x must have shape \[\*, 6\]"):
        _mgn()(x[:, :5], ei, ea)
    with pytest.raises(ValueError, match="edge_attr"):
        _mgn()(x, ei, ea[:-1])
    with pytest.raises(ValueError, match="outside"):
        _mgn()(x, ei + 1000, ea)
    with pytest.raises(ValueError, match="dilated_edge_index"):
        _gt()(x, graph["pos"], graph["attn"])
    with pytest.raises(ValueError, match="pos"):
        _gt()(x, graph["pos"][:, :1], graph["attn"], graph["dilated"])
    with pytest.raises(ValueError, match="attributes"):
        _gto()(x[:, :3], x[:-1, 3:], ei, ea)


@pytest.mark.parametrize("name", MODELS)
def test_activation_checkpointing_changes_no_gradient(name: str, graph) -> None:
    model = MODELS[name]()
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        model.activation_checkpointing = enabled
        _run(name, model, graph).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
