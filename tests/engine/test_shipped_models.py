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

SHIPPED = [(path, card) for path, card in zoo.find_models() if path.parent.name == "models"]
MAX_BYTES = 20 * 2**20  # the brief's limit on shipped weights


def test_the_default_and_the_gpu_model_ship() -> None:
    assert {"default", "physgto"} <= {path.name for path, _ in SHIPPED}


@pytest.mark.parametrize("path, card", SHIPPED, ids=[path.name for path, _ in SHIPPED])
def test_a_shipped_model_loads_and_steps(path, card) -> None:
    assert isinstance(card, ModelCard), card  # a broken card is listed as its error
    assert path.with_suffix(".safetensors").stat().st_size <= MAX_BYTES
    assert card.description and card.gpu_minutes > 0
    assert card.metrics["testset"] == "showcase" and card.metrics["steps"] == 600
    mesh = structured_channel_mesh(600)
    sim = Simulator.load(path, torch.device("cpu"))
    static = sim.prepare(mesh, SYNTHETIC_SCENARIO)
    velocity, pressure = torch.zeros(mesh.num_nodes, 2), torch.zeros(mesh.num_nodes)
    time = 0.0
    with torch.inference_mode():
        for _ in range(20):
            velocity, pressure = sim.step(static, velocity, pressure, time)
            time += static.dt
    speed = velocity.norm(dim=1).numpy()
    assert np.isfinite(speed).all() and np.isfinite(pressure.numpy()).all()
    # the ramped inflow has filled the empty channel: its median speed is the inlet's mean
    inlet = ramp(SYNTHETIC_SCENARIO, time) * SYNTHETIC_SCENARIO.inflow.mean_speed
    assert float(np.median(speed)) == pytest.approx(inlet, rel=0.25)
