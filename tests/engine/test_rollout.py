"""Learned rollouts on real gmsh meshes: frames, boundary values, divergence, cancel, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.errors import DivergenceError
from engine.geometry import build_tunnel_mesh
from engine.geometry.mesh import TunnelMesh
from engine.models.simulator import Simulator, SimulatorConfig
from engine.nodetypes import NodeType
from engine.rollout.reference import trajectory_mesh
from engine.rollout.rollout import rollout
from engine.scenario import Circle, Inflow, MeshSpec, Rectangle, Scenario, TimeSpec

SCENARIO = Scenario(
    obstacles=(Circle((0.25, 0.2), 0.05), Rectangle((0.9, 0.18), (0.1, 0.06), 30.0)),
    inflow=Inflow(mean_speed=2.0, ramp_time=0.05),
    mesh=MeshSpec(size=0.07, obstacle_size=0.025),
    time=TimeSpec(dt=0.02, steps=5),
    name="two-bodies",
)


@pytest.fixture(scope="module")
def mesh() -> TunnelMesh:
    return build_tunnel_mesh(SCENARIO)


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    torch.manual_seed(0)
    cfg = SimulatorConfig.from_dict(
        {"architecture": "meshgraphnet", "arguments": {"latent": 16, "num_blocks": 1}}
    )
    return Simulator.from_config(cfg)


def test_rollout_yields_initial_then_predicted_frames(
    simulator: Simulator, mesh: TunnelMesh
) -> None:
    frames = list(rollout(simulator, SCENARIO, 4, "cpu", mesh=mesh))
    assert [f.step for f in frames] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([f.time for f in frames], [0.0, 0.02, 0.04, 0.06, 0.08])
    assert not frames[0].u.any() and not frames[0].p.any()  # at rest: the ramp starts at 0
    inlet = mesh.nodes_of(NodeType.INFLOW)
    walls = mesh.nodes_of(NodeType.OBSTACLE)
    for f in frames[1:]:
        assert f.forces.shape == f.coefficients.shape == (2, 2)
        assert np.isfinite(f.coefficients).all()
        assert np.all(f.u[walls] == 0) and np.all(f.v[walls] == 0)
    # after the 0.05 s ramp the inlet carries the full parabola, peak 1.5 Ū, at mid height
    top = frames[-1].u[inlet].max()
    assert top == pytest.approx(1.5 * 2.0, rel=0.02)
    assert simulator.training  # rollout leaves the caller's mode alone


def test_rollout_meshes_the_scenario_when_no_mesh_is_given(simulator: Simulator) -> None:
    frames = list(rollout(simulator, SCENARIO, 1, "cpu"))
    assert len(frames) == 2 and frames[1].coefficients.shape == (2, 2)


def test_cancel_ends_the_generator_early(simulator: Simulator, mesh: TunnelMesh) -> None:
    polled = []

    def cancel() -> bool:
        polled.append(True)
        return len(polled) > 2

    frames = list(rollout(simulator, SCENARIO, 50, "cpu", mesh=mesh, cancel=cancel))
    assert [f.step for f in frames] == [0, 1, 2]


def test_blow_up_is_a_divergence_error(mesh: TunnelMesh) -> None:
    cfg = SimulatorConfig.from_dict(
        {"architecture": "meshgraphnet", "arguments": {"latent": 16, "num_blocks": 1}}
    )
    exploding = Simulator.from_config(cfg)
    with torch.no_grad():
        # velocity increments of ~50 Ū per step: far past any real flow
        exploding.target_normalizer.running_m2.fill_(2500.0)
        exploding.target_normalizer.count.fill_(1.0)
        for p in exploding.network.parameters():
            p.fill_(0.5)
    with pytest.raises(DivergenceError, match="exceeds 20× the mean inflow speed") as info:
        list(rollout(exploding, SCENARIO, 10, "cpu", mesh=mesh))
    assert info.value.step == 1


def test_nan_is_a_divergence_error(mesh: TunnelMesh) -> None:
    cfg = SimulatorConfig.from_dict(
        {"architecture": "meshgraphnet", "arguments": {"latent": 16, "num_blocks": 1}}
    )
    broken = Simulator.from_config(cfg)
    with torch.no_grad():
        next(broken.network.parameters()).fill_(float("nan"))
    frames = []
    with pytest.raises(DivergenceError, match="NaN") as info:
        frames.extend(rollout(broken, SCENARIO, 10, "cpu", mesh=mesh))
    assert info.value.step == 1 and [f.step for f in frames] == [0]


def test_trajectory_mesh_recovers_the_named_boundaries(mesh: TunnelMesh) -> None:
    n = mesh.num_nodes
    stored = Trajectory(
        mesh.points,
        mesh.cells,
        mesh.node_type,
        np.zeros((1, n, 2), np.float32),
        np.zeros((1, n), np.float32),
        np.zeros(1),
        np.zeros((1, 2, 2)),
        np.zeros((1, 2, 2)),
        SCENARIO.to_dict(),
    )
    rebuilt = trajectory_mesh(stored, SCENARIO)
    assert set(rebuilt.boundary_edges) == set(mesh.boundary_edges)
    for name, edges in mesh.boundary_edges.items():
        want = {tuple(e) for e in np.sort(edges, axis=1)}
        got = {tuple(e) for e in np.sort(rebuilt.boundary_edges[name], axis=1)}
        assert got == want, name


def test_rollout_command_writes_a_trajectory(simulator: Simulator, tmp_path: Path) -> None:
    simulator.save(tmp_path / "tiny")
    scenario_path = tmp_path / "case.json"
    SCENARIO.save(scenario_path)
    out = tmp_path / "pred.h5"
    code = main(
        [
            "rollout",
            str(scenario_path),
            "--model",
            str(tmp_path / "tiny"),
            "--steps",
            "3",
            "-o",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    pred = Trajectory.load(out)
    assert pred.num_steps == 4 and pred.coefficients.shape == (4, 2, 2)
    assert pred.attrs["model"] == "model" and pred.scenario["name"] == "two-bodies"
    # --initial replays a stored run: same mesh, first frame copied
    again = tmp_path / "again.h5"
    assert (
        main(
            [
                "rollout",
                str(scenario_path),
                "--model",
                str(tmp_path / "tiny"),
                "--steps",
                "2",
                "-o",
                str(again),
                "--initial",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    replay = Trajectory.load(again)
    np.testing.assert_array_equal(replay.mesh_pos, pred.mesh_pos)
    np.testing.assert_array_equal(replay.velocity[0], pred.velocity[0])
    assert json.loads(json.dumps(replay.attrs))["device"] == "cpu"
