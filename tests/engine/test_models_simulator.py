"""The Simulator: files and cards without pickle, boundary imposition, units, training loss."""

from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from engine.boundary import inflow_velocity
from engine.errors import ModelError
from engine.geometry import build_tunnel_mesh
from engine.graph.static import GraphSpec
from engine.models import zoo
from engine.models.card import ModelCard, TrainingEnvelope
from engine.models.simulator import (
    Simulator,
    SimulatorConfig,
    collate_statics,
    make_training_sample,
)
from engine.nodetypes import NodeType
from engine.scenario import Circle, Fluid, MeshSpec, Rectangle, Scenario, TimeSpec, Tunnel

SCENARIO = Scenario(
    obstacles=(Circle((0.2, 0.2), 0.05),), mesh=MeshSpec(size=0.06, obstacle_size=0.02)
)
TINY = {
    "meshgraphnet": SimulatorConfig("meshgraphnet", {"latent": 16, "num_blocks": 2}),
    "graph_transformer": SimulatorConfig("graph_transformer", {"size": "tiny", "dim": 32}),
    "physgto": SimulatorConfig(
        "physgto", {"dim": 16, "num_blocks": 1, "heads": 2, "num_tokens": 4}
    ),
}


@pytest.fixture(scope="module")
def mesh():
    return build_tunnel_mesh(SCENARIO)


def _state(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, generator=g), torch.rand(n, generator=g)


def _trained_a_little(name: str, mesh) -> tuple[Simulator, torch.Tensor]:
    """A simulator whose normalisers hold statistics, and the loss of its first batch."""
    torch.manual_seed(0)
    sim = Simulator.from_config(TINY[name]).train()
    static = sim.prepare(mesh, SCENARIO)
    v0, p0 = _state(static.num_nodes, 1)
    v1, p1 = _state(static.num_nodes, 2)
    loss = sim.loss(make_training_sample(static, v0, p0, v1, p1, noise_std=0.02))
    return sim.eval(), loss


@pytest.mark.parametrize("name", TINY)
def test_save_load_round_trip_without_pickle(name: str, mesh, tmp_path, monkeypatch) -> None:
    sim, _ = _trained_a_little(name, mesh)
    sim.card.envelope = TrainingEnvelope.covering([(SCENARIO, mesh.num_nodes)])
    weights, card = sim.save(tmp_path / "tiny")
    assert {p.name for p in tmp_path.iterdir()} == {"tiny.safetensors", "tiny.json"}
    raw = weights.read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])  # safetensors: a JSON header, then raw tensors
    assert "state_normalizer.running_mean" in header
    assert b"\x80\x04" not in raw[:2] and not raw.startswith(b"PK")  # no pickle, no zip
    assert json.loads(card.read_text())["architecture"] == name

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load must never be used for model files")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    again = Simulator.load("tiny")  # bare name → assets/models (here: tmp_path)
    assert again.card == sim.card
    static = sim.prepare(mesh, SCENARIO)
    v, p = _state(static.num_nodes)
    for a, b in zip(sim.step(static, v, p, 0.3), again.step(static, v, p, 0.3), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(again.target_normalizer.count, sim.target_normalizer.count)


def test_load_errors_are_model_errors(mesh, tmp_path) -> None:
    sim = Simulator.from_config(TINY["meshgraphnet"])
    sim.save(tmp_path / "m")
    with pytest.raises(ModelError, match="missing"):
        Simulator.load(tmp_path / "absent")
    data = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(ModelError, match="newer"):
        Simulator.load(tmp_path / "m")
    data["arguments"]["latent"] = 8
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="does not match"):
        Simulator.load(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text(json.dumps({**data, "architecture": "resnet"}))
    with pytest.raises(ModelError, match="unknown architecture"):
        Simulator.load(tmp_path / "m")
    (tmp_path / "m.safetensors").write_bytes(b"not a model")
    (tmp_path / "m.json").write_text(json.dumps({**data, "arguments": sim.card.arguments}))
    with pytest.raises(ModelError, match="safetensors"):
        Simulator.load(tmp_path / "m")
    with pytest.raises(ModelError, match="arguments"):
        Simulator.from_config(SimulatorConfig("meshgraphnet", {"width": 3}))
    with pytest.raises(ModelError, match="unknown size"):
        Simulator.from_config(SimulatorConfig("graph_transformer", {"size": "huge"}))
    with pytest.raises(ModelError, match="attention_hops"):
        Simulator.from_config(SimulatorConfig("graph_transformer", graph=GraphSpec()))
    with pytest.raises(ModelError, match="dilation"):
        Simulator.from_config(
            SimulatorConfig("graph_transformer", graph=GraphSpec(attention_hops=2))
        )
    with pytest.raises(ModelError, match="unknown field"):
        SimulatorConfig.from_dict({"architecture": "physgto", "width": 3})


@pytest.mark.parametrize("walls", ["no-slip", "slip"])
def test_step_imposes_boundary_values(walls: str, mesh) -> None:
    scenario = dataclasses.replace(SCENARIO, tunnel=Tunnel(walls=walls))
    sim, _ = _trained_a_little("meshgraphnet", mesh)
    static = sim.prepare(mesh, scenario)
    v, p = _state(static.num_nodes)
    time = 0.2  # inside the start-up ramp, so the inflow changes between steps
    with torch.no_grad():
        v1, p1 = sim.step(static, v, p, time)
    nt = mesh.node_type
    inflow = nt == NodeType.INFLOW
    expected = inflow_velocity(scenario, mesh.points[inflow], time + scenario.time.dt)
    assert np.allclose(v1[inflow].numpy(), expected, atol=1e-6)
    assert v1[nt == NodeType.OBSTACLE].eq(0).all()
    walls_ = nt == NodeType.WALL_BOUNDARY
    assert v1[walls_, 1].eq(0).all()
    assert v1[walls_, 0].eq(0).all() == (walls == "no-slip")
    assert torch.isfinite(p1).all() and p1.shape == (static.num_nodes,)


def test_step_works_in_any_units(mesh) -> None:
    """The same flow in millimetres and a faster, denser fluid gives the same scaled answer."""
    sim, _ = _trained_a_little("physgto", mesh)
    k, s, rho = 1000.0, 3.0, 1.2
    (c,) = SCENARIO.obstacles
    other = dataclasses.replace(
        SCENARIO,
        tunnel=Tunnel(2.2 * k, 0.41 * k),
        obstacles=(Circle((c.center[0] * k, c.center[1] * k), c.radius * k),),
        inflow=dataclasses.replace(SCENARIO.inflow, mean_speed=s, ramp_time=0.5 * k / s),
        fluid=Fluid(SCENARIO.fluid.viscosity * k * s, rho),
        time=TimeSpec(SCENARIO.time.dt * k / s),
    )
    scaled_mesh = dataclasses.replace(mesh, points=mesh.points * k)
    v, p = _state(mesh.num_nodes)
    v1, p1 = sim.step(sim.prepare(mesh, SCENARIO), v, p, 0.1)
    v2, p2 = sim.step(sim.prepare(scaled_mesh, other), v * s, p * rho * s**2, 0.1 * k / s)
    assert torch.allclose(v2, v1 * s, rtol=1e-4, atol=1e-5)
    assert torch.allclose(p2, p1 * rho * s**2, rtol=1e-4, atol=1e-4)


def test_training_sample_noise_and_targets(mesh) -> None:
    sim = Simulator.from_config(TINY["meshgraphnet"])
    static = sim.prepare(mesh, SCENARIO)
    n = static.num_nodes
    v0, p0 = _state(n, 1)
    v1, p1 = _state(n, 2)
    torch.manual_seed(0)
    sample = make_training_sample(static, v0.numpy(), p0.numpy(), v1, p1, noise_std=0.1)
    imposed = static.velocity_mask[:, 0] == 0
    assert torch.equal(sample.state[imposed, :2], v0[imposed])  # no noise where imposed
    assert not torch.allclose(sample.state[~imposed, :2], v0[~imposed])
    assert torch.allclose(sample.target[:, :2], v1 - sample.state[:, :2])  # from the noisy input
    assert torch.equal(sample.target[:, 2], p1)
    assert torch.equal(sample.target_mask[:, 2], torch.ones(n))
    assert "state" not in static  # the static graph is shared, not modified
    with pytest.raises(ValueError, match="velocities"):
        make_training_sample(static, v0[:-1], p0, v1, p1, 0.0)


def test_loss_is_masked_and_accumulates_only_while_training(mesh) -> None:
    sim = Simulator.from_config(TINY["meshgraphnet"])
    static = sim.prepare(mesh, SCENARIO)
    v0, p0 = _state(static.num_nodes, 1)
    v1, p1 = _state(static.num_nodes, 2)
    sample = make_training_sample(static, v0, p0, v1, p1, 0.0)
    sim.eval()
    base = sim.loss(sample)
    assert sim.state_normalizer.count == 0
    imposed = static.velocity_mask[:, 0] == 0
    sample.target[imposed, :2] += 100.0  # imposed values do not count
    assert torch.allclose(sim.loss(sample), base)
    sim.train()
    sim.loss(sample)
    assert sim.state_normalizer.count == static.num_nodes
    assert sim.target_normalizer.count == int((~imposed).sum())
    sim.accumulate_statistics = False
    sim.loss(sample)
    assert sim.state_normalizer.count == static.num_nodes


@pytest.fixture(scope="module")
def two_sizes(mesh):
    coarse = build_tunnel_mesh(dataclasses.replace(SCENARIO, mesh=MeshSpec(0.08, 0.03)))
    return mesh, coarse


def _samples(sim: Simulator, meshes) -> list:
    out = []
    for i, m in enumerate(meshes):
        static = sim.prepare(m, SCENARIO)
        v0, p0 = _state(m.num_nodes, i)
        out.append(make_training_sample(static, v0, p0, 0.9 * v0, p0 + 0.1, 0.0))
    return out


@pytest.mark.parametrize("name", TINY)
def test_batch_of_different_sizes_predicts_like_each_graph_alone(name: str, two_sizes) -> None:
    sim, _ = _trained_a_little(name, two_sizes[0])
    samples = _samples(sim, two_sizes)
    batch = Batch.from_data_list(samples)
    with torch.no_grad():
        together = sim.predict(batch, batch.state)
        alone = torch.cat([sim.predict(s, s.state) for s in samples])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("name", TINY)
def test_step_many_advances_each_flow_as_step_does(name: str, two_sizes) -> None:
    """Pushforward training steps flows of different sizes and scenarios together; each must
    come out as if stepped alone, projection and boundary values included."""
    sim, _ = _trained_a_little(name, two_sizes[0])
    slower = dataclasses.replace(SCENARIO.inflow, mean_speed=0.4)
    slow = dataclasses.replace(SCENARIO, inflow=slower)
    statics = [sim.prepare(two_sizes[0], SCENARIO), sim.prepare(two_sizes[1], slow)]
    assert all(s.get("projection") is not None for s in statics)
    states = [_state(s.num_nodes, i) for i, s in enumerate(statics)]
    times = [0.3, 1.7]
    with torch.no_grad():
        together = sim.step_many(
            collate_statics(statics),
            statics,
            [v for v, _ in states],
            [p for _, p in states],
            times,
        )
        alone = [sim.step(s, v, p, t) for s, (v, p), t in zip(statics, states, times, strict=True)]
    for (v_many, p_many), (v_one, p_one) in zip(together, alone, strict=True):
        torch.testing.assert_close(v_many, v_one, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(p_many, p_one, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(together[1][0], statics[1].velocity_scale * states[1][0])


def test_loss_falls_when_training_on_a_batch(two_sizes) -> None:
    torch.manual_seed(0)
    sim = Simulator.from_config(TINY["meshgraphnet"]).train()
    batch = Batch.from_data_list(_samples(sim, two_sizes))
    optimiser = torch.optim.Adam(sim.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        optimiser.zero_grad()
        loss = sim.loss(batch)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_card_envelope_warnings(mesh) -> None:
    envelope = TrainingEnvelope.covering([(SCENARIO, mesh.num_nodes)])
    card = ModelCard("m", "meshgraphnet", {}, {}, envelope=envelope)
    assert card.envelope_warnings(SCENARIO, mesh) == []
    odd = dataclasses.replace(
        SCENARIO,
        obstacles=(Rectangle((0.2, 0.2), (0.1, 0.1)),),
        fluid=Fluid(viscosity=1e-4),
        tunnel=Tunnel(walls="slip"),
        time=TimeSpec(dt=0.02),
    )
    text = " | ".join(card.envelope_warnings(odd, mesh))
    for words in ("Reynolds number 1000", "dt·Ū/L", "rectangle", "slip walls"):
        assert words in text
    coarse = build_tunnel_mesh(dataclasses.replace(SCENARIO, mesh=MeshSpec(0.15, 0.05)))
    assert any("mesh size" in w for w in card.envelope_warnings(SCENARIO, coarse))
    reread = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert reread == card
    assert ModelCard("m", "physgto", {}, {}).envelope_warnings(odd, mesh) == []
