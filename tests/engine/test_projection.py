"""The mass-conserving projection applied to every learned step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.graph.synthetic import SYNTHETIC_SCENARIO, structured_channel_mesh
from engine.models.projection import MassProjection
from engine.models.simulator import Simulator
from engine.nodetypes import NodeType

LENGTH, HEIGHT = 2.2, 0.41


def column_mean_u(points: np.ndarray, u: np.ndarray, x: float) -> float:
    """Mean streamwise velocity over the interior nodes of the grid column nearest ``x``."""
    xs = np.unique(np.round(points[:, 0], 9))
    nearest = xs[np.argmin(np.abs(xs - x))]
    column = (
        np.isclose(points[:, 0], nearest) & (points[:, 1] > 1e-9) & (points[:, 1] < HEIGHT - 1e-9)
    )
    return float(u[column].mean())


@pytest.fixture(scope="module")
def channel():
    mesh = structured_channel_mesh(1200, square=None)
    return mesh, MassProjection(mesh.points, mesh.cells, mesh.node_type)


def test_a_divergence_free_field_is_left_alone(channel) -> None:
    mesh, projection = channel
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    field = torch.tensor(np.stack([1.0 + y, x], axis=1), dtype=torch.float32)  # div = 0
    assert torch.allclose(projection(field)[0], field, atol=1e-5)


def test_the_flow_rate_is_restored_downstream(channel) -> None:
    """A field that carries half the inflow's flux downstream gets the whole flux back."""
    mesh, projection = channel
    points = np.asarray(mesh.points)
    y = points[:, 1]
    profile = 6.0 * y * (HEIGHT - y) / HEIGHT**2  # parabolic, mean 1
    inflow = np.asarray(mesh.node_type) == NodeType.INFLOW
    u = np.where(inflow, profile, 0.5 * profile)
    field = torch.tensor(np.stack([u, np.zeros_like(u)], axis=1), dtype=torch.float32)
    inlet = column_mean_u(points, profile, 0.0)
    assert column_mean_u(points, u, 1.1) == pytest.approx(0.5 * inlet, rel=0.02)
    projected = projection(field)[0].numpy()
    for x in (0.55, 1.1, 1.65):
        assert column_mean_u(points, projected[:, 0], x) == pytest.approx(inlet, rel=0.05)


def test_a_gradient_field_is_removed_and_its_potential_returned(channel) -> None:
    """u* = ∇ψ with ψ = 0 on the outlet and no normal flux through inlet and walls is all
    "pressure": the projection removes it and hands back φ = ψ (the simulator's ρφ/dt)."""
    mesh, projection = channel
    x = np.asarray(mesh.points)[:, 0]
    psi = np.cos(np.pi * x / (2 * LENGTH))  # ∂ψ/∂x = 0 at the inlet, ψ = 0 at the outlet
    grad = np.stack([-np.pi / (2 * LENGTH) * np.sin(np.pi * x / (2 * LENGTH)), 0 * x], axis=1)
    field = torch.tensor(grad, dtype=torch.float32)
    projected, potential = projection(field)
    assert potential.shape == (mesh.num_nodes,)
    np.testing.assert_allclose(potential.numpy(), psi, atol=0.02)
    # Away from the outlet's last cells, where the lumped nodal gradient of the anchored φ is
    # one-sided (up to 0.45 at the outlet corners of this mesh), nothing is left.
    inside = x < LENGTH - 0.1
    assert float(projected[inside].abs().max()) < 0.02 * float(field.abs().max())


def test_degenerate_triangles_are_refused() -> None:
    points = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="degenerate"):
        MassProjection(points, np.array([[0, 1, 2]]), np.zeros(3, dtype=int))


def test_the_projection_can_be_switched_off_to_measure_the_network_alone() -> None:
    mesh = structured_channel_mesh(600)
    sim = Simulator.load("default")
    projected = sim.prepare(mesh, SYNTHETIC_SCENARIO)
    sim.project_steps = False
    plain = sim.prepare(mesh, SYNTHETIC_SCENARIO)
    assert "projection" in projected and "projection" not in plain
    velocity = torch.zeros(mesh.num_nodes, 2)
    pressure = torch.zeros(mesh.num_nodes)
    with torch.inference_mode():
        a, _ = sim.step(projected, velocity, pressure, 0.3)
        b, _ = sim.step(plain, velocity, pressure, 0.3)
    change = (a - b).norm() / b.norm()
    assert change > 1e-3  # from rest the network alone misses the inlet's flow rate


@pytest.mark.parametrize("pressure_term", [True, False])
def test_a_projected_step_adds_the_pressure_of_its_correction(pressure_term: bool) -> None:
    """Chorin: the removed gradient ∇φ is (dt/ρ)∇p, so the step's pressure gains ρŪφ/dt —
    where the card asks for it; otherwise the network's pressure is left as it is."""
    mesh = structured_channel_mesh(600, square=None)
    sim = Simulator.load("default")
    sim.card.projection_pressure = pressure_term
    static = sim.prepare(mesh, SYNTHETIC_SCENARIO)
    bare = sim.prepare(mesh, SYNTHETIC_SCENARIO)
    del bare.projection
    g = torch.Generator().manual_seed(3)
    velocity, pressure = torch.rand(mesh.num_nodes, 2, generator=g), torch.zeros(mesh.num_nodes)
    with torch.inference_mode():
        v_on, p_on = sim.step(static, velocity, pressure, 0.5)
        v_off, p_off = sim.step(bare, velocity, pressure, 0.5)
        scale = static.velocity_scale
        _, potential = static.projection((v_off - velocity) / scale)
    rho = SYNTHETIC_SCENARIO.fluid.density
    expected = p_off + rho * scale * potential / static.dt if pressure_term else p_off
    assert not torch.allclose(v_on, v_off, atol=1e-3)
    torch.testing.assert_close(p_on, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
