"""Every model in assets/models/ is one a user can pick: it loads, its card says what it is and
how it measured, its file is small enough to ship, and it carries a flow from rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.boundary import ramp
from engine.graph.synthetic import SYNTHETIC_SCENARIO, structured_channel_mesh
from engine.models import zoo
from engine.models.card import ModelCard
from engine.models.simulator import Simulator
from tests.engine.test_projection import column_mean_u

SHIPPED = [(path, card) for path, card in zoo.find_models() if path.parent.name == "models"]
MAX_BYTES = 20 * 2**20  # the brief's limit on shipped weights


def test_the_default_and_the_gpu_model_ship() -> None:
    assert {"default", "physgto"} <= {path.name for path, _ in SHIPPED}


@pytest.mark.parametrize("path, card", SHIPPED, ids=[path.name for path, _ in SHIPPED])
def test_a_shipped_model_has_a_card_that_says_what_it_measured(path, card) -> None:
    assert isinstance(card, ModelCard), card  # a broken card is listed as its error
    assert path.with_suffix(".safetensors").stat().st_size <= MAX_BYTES
    assert card.description and card.gpu_minutes > 0
    assert card.metrics["testset"] == "showcase" and card.metrics["steps"] == 600


@pytest.mark.parametrize("path", [path for path, _ in SHIPPED], ids=lambda path: path.name)
def test_a_learned_rollout_from_rest_carries_the_inflow_rate(path) -> None:
    """60 steps from rest on an empty channel: the flux mid-channel is the inflow's. Without the
    mass projection the first default carried 0.27 against the inlet's 0.96 after 40 steps: a
    network alone does not carry the inlet's flow rate across the channel in time."""
    mesh = structured_channel_mesh(700, square=None)
    sim = Simulator.load(path, torch.device("cpu"))
    static = sim.prepare(mesh, SYNTHETIC_SCENARIO)
    velocity, pressure = torch.zeros(mesh.num_nodes, 2), torch.zeros(mesh.num_nodes)
    time = 0.0
    with torch.inference_mode():
        for _ in range(60):
            velocity, pressure = sim.step(static, velocity, pressure, time)
            time += static.dt
    assert torch.isfinite(velocity).all() and torch.isfinite(pressure).all()
    points = np.asarray(mesh.points)
    u = velocity[:, 0].numpy()
    inlet = column_mean_u(points, u, 0.0)
    assert ramp(SYNTHETIC_SCENARIO, time) == 1.0 and inlet > 0.9
    assert column_mean_u(points, u, 1.1) == pytest.approx(inlet, rel=0.1)
