"""compare and its metrics on signals whose answers are known in closed form."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.evaluation.compare import compare
from engine.evaluation.metrics import (
    dominant_frequency,
    field_rmse,
    force_stats,
    startup_force_error,
    wake_stats,
)
from engine.geometry import build_tunnel_mesh
from engine.geometry.mesh import TunnelMesh
from engine.nodetypes import NodeType
from engine.scenario import Circle, Fluid, Inflow, MeshSpec, Scenario, TimeSpec

DT = 0.01
STEPS = 400
SCENARIO = Scenario(
    obstacles=(Circle((0.25, 0.2), 0.05),),
    inflow=Inflow(mean_speed=2.0),
    fluid=Fluid(viscosity=1e-3, density=1.2),
    mesh=MeshSpec(size=0.08, obstacle_size=0.03),
    time=TimeSpec(dt=DT, steps=STEPS),
)


@pytest.mark.parametrize("freq", [3.0, 3.37, 5.81])
def test_dominant_frequency_of_a_pure_sine(freq: float) -> None:
    t = np.arange(300) * DT  # about ten periods, frequency between FFT bins
    assert dominant_frequency(np.sin(2 * np.pi * freq * t + 0.4) + 2.0, DT) == pytest.approx(
        freq, rel=1e-3
    )


def test_dominant_frequency_of_a_constant_is_none() -> None:
    assert dominant_frequency(np.full(100, 3.0), DT) is None


def test_force_stats_of_a_shedding_signal() -> None:
    t = np.arange(1000) * DT
    f_lift = 2.9
    cd = 3.2 + 0.05 * np.sin(2 * np.pi * 2 * f_lift * t)
    cl = 0.9 * np.sin(2 * np.pi * f_lift * t)
    cd[:300] += 5.0 * np.exp(-t[:300])  # start-up transient, dropped with the first half
    stats = force_stats(np.stack([cd, cl], -1), DT, length=0.1, speed=1.0)
    assert stats.shedding
    assert stats.strouhal == pytest.approx(f_lift * 0.1, rel=1e-3)
    assert stats.cd_mean == pytest.approx(3.2, abs=2e-3)
    assert stats.cl_amplitude == pytest.approx(0.9, rel=1e-3)
    assert stats.cl_max == pytest.approx(0.9, rel=1e-3)


def test_force_stats_of_a_steady_flow_has_no_strouhal() -> None:
    steady = np.column_stack([np.full(200, 5.58), np.full(200, 0.0106)])
    stats = force_stats(steady, DT, length=0.1, speed=0.2)
    assert not stats.shedding and stats.strouhal is None
    assert stats.cd_mean == pytest.approx(5.58) and stats.cl_amplitude == pytest.approx(0.0)


def test_startup_force_error_looks_at_the_ramp_and_as_long_again() -> None:
    time = np.arange(101) * 0.01  # 0 … 1 s
    reference = np.stack([np.linspace(0.0, 3.0, 101), np.zeros(101)], axis=1)
    prediction = reference.copy()
    prediction[30] += (-2.0, 0.9)  # t = 0.3 s: inside a 0.25 s ramp and as long again
    prediction[80] += (7.0, 5.0)  # t = 0.8 s: settled flow, the tail statistics' business
    error = startup_force_error(reference, prediction, time, ramp_time=0.25)
    assert error == pytest.approx(
        {"until_time": 0.5, "cd_max_abs_error": 2.0, "cl_max_abs_error": 0.9}
    )
    assert startup_force_error(reference, prediction, time, ramp_time=0.0) is None  # impulsive
    wide = startup_force_error(reference, prediction, time, ramp_time=0.5)
    assert wide is not None and wide["cd_max_abs_error"] == pytest.approx(7.0)


def test_field_rmse_pools_and_masks() -> None:
    ref_v = np.zeros((3, 4, 2))
    pred_v = ref_v.copy()
    pred_v[..., 0] = 0.3
    pred_v[:, 3] = 100.0  # a masked-out node does not count
    ref_p, pred_p = np.zeros((3, 4)), np.full((3, 4), 2.0)
    mask = np.array([True, True, True, False])
    rmse = field_rmse(ref_v, pred_v, ref_p, pred_p, mask)
    assert rmse["u"] == pytest.approx(0.3) and rmse["v"] == pytest.approx(0.0)
    assert rmse["velocity"] == pytest.approx(0.3 / math.sqrt(2)) and rmse["p"] == pytest.approx(2)


def test_wake_stats_tell_a_drifting_street_from_a_damped_one() -> None:
    """The double penalty: pointwise RMSE prefers a dead wake to one shed slightly too fast."""
    x = np.linspace(0.0, 4.0, 400)
    t = np.arange(600)[:, None] * 0.01

    def street(omega: float, amplitude: float = 0.3) -> np.ndarray:
        velocity = np.zeros((len(t), len(x), 2))
        velocity[..., 0] = 1.0 + amplitude * np.sin(2.0 * x - omega * t)
        velocity[..., 1] = amplitude * np.cos(2.0 * x - omega * t)
        return velocity

    reference, drifting, damped = street(6.0), street(6.6), street(6.0, amplitude=0.0)
    pressure = np.zeros(reference.shape[:2])

    def rmse(prediction: np.ndarray) -> float:
        return field_rmse(reference, prediction, pressure, pressure)["velocity"]

    assert rmse(damped) < rmse(drifting)  # the all-rollout RMSE ranks the dead wake first
    drift, dead = wake_stats(reference, drifting, 1.0), wake_stats(reference, damped, 1.0)
    assert drift["fluctuation_ratio"] == pytest.approx(1.0, abs=0.02)
    assert dead["fluctuation_ratio"] == pytest.approx(0.0, abs=1e-12)
    for stats in (drift, dead):  # both have the right mean flow
        assert stats["mean_flow_velocity_rmse_relative"] < 0.05
    steady = wake_stats(damped, drifting, 1.0)
    assert steady["fluctuation_ratio"] is None  # nothing to compare a fluctuation with
    assert steady["mean_flow_velocity_rmse_relative"] < 0.05


@pytest.fixture(scope="module")
def mesh() -> TunnelMesh:
    return build_tunnel_mesh(SCENARIO)


def synthetic(mesh: TunnelMesh, offset: float, f_lift: float, cd: float) -> Trajectory:
    """A made-up flow: uniform u = 1 (+ offset on computed nodes) and a sine lift."""
    t = np.arange(STEPS + 1) * DT
    n = mesh.num_nodes
    computed = (mesh.node_type == NodeType.NORMAL) | (mesh.node_type == NodeType.OUTFLOW)
    velocity = np.zeros((len(t), n, 2), np.float32)
    velocity[..., 0] = 1.0 + offset * computed
    pressure = np.zeros((len(t), n), np.float32) + 0.5 * offset * computed
    coefficients = np.stack([cd + 0 * t, np.sin(2 * np.pi * f_lift * t)], -1)[:, None, :]
    return Trajectory(
        mesh.points,
        mesh.cells,
        mesh.node_type,
        velocity,
        pressure,
        t,
        coefficients.copy(),
        coefficients,
        SCENARIO.to_dict(),
    )


def test_compare_reports_known_errors(mesh: TunnelMesh) -> None:
    ref = synthetic(mesh, 0.0, f_lift=6.0, cd=3.0)
    pred = synthetic(mesh, 0.1, f_lift=6.3, cd=3.3)
    result = compare(ref, pred)
    assert result["steps"] == STEPS and "one_step_rmse" not in result
    assert result["rollout_rmse"]["u"] == pytest.approx(0.1, rel=1e-5)
    assert result["rollout_rmse_relative"]["u"] == pytest.approx(0.1 / 2.0, rel=1e-5)
    assert result["rollout_rmse_relative"]["p"] == pytest.approx(0.05 / (1.2 * 4.0), rel=1e-5)
    (force,) = result["forces"]
    assert force["reference"]["strouhal"] == pytest.approx(6.0 * 0.1 / 2.0, rel=1e-3)
    assert force["error"]["strouhal"] == pytest.approx(0.05, rel=1e-2)
    assert force["error"]["cd_mean"] == pytest.approx(0.1, rel=1e-6)
    assert force["error"]["cl_amplitude"] == pytest.approx(0.0, abs=5e-3)  # sampled peaks


def test_compare_command_on_files_read_back(
    mesh: TunnelMesh, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic(mesh, 0.0, 6.0, 3.0).save(tmp_path / "ref.h5")
    synthetic(mesh, 0.2, 6.0, 3.0).save(tmp_path / "pred.h5")
    assert main(["compare", str(tmp_path / "ref.h5"), str(tmp_path / "pred.h5"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rollout_rmse"]["u"] == pytest.approx(0.2, rel=1e-5)
    assert result["forces"][0]["error"]["strouhal"] == pytest.approx(0.0, abs=1e-6)


def test_a_shorter_prediction_is_compared_on_the_common_steps(mesh: TunnelMesh) -> None:
    ref = synthetic(mesh, 0.0, 6.0, 3.0)
    pred = synthetic(mesh, 0.1, 6.0, 3.0)
    pred.velocity, pred.pressure = pred.velocity[:51], pred.pressure[:51]
    pred.time, pred.forces, pred.coefficients = (
        pred.time[:51],
        pred.forces[:51],
        pred.coefficients[:51],
    )
    assert compare(ref, pred)["steps"] == 50


def test_different_meshes_are_refused(mesh: TunnelMesh) -> None:
    ref = synthetic(mesh, 0.0, 6.0, 3.0)
    other = Trajectory(
        ref.mesh_pos[:-1],
        ref.cells[:1],
        ref.node_type[:-1],
        ref.velocity[:, :-1],
        ref.pressure[:, :-1],
        ref.time,
        ref.forces,
        ref.coefficients,
        ref.scenario,
    )
    with pytest.raises(DataFormatError, match="same mesh"):
        compare(ref, other)
