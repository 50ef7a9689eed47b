"""The reference solver on real gmsh meshes: DFG 2D-1 accuracy, boundary values, cancel, blow-up."""

from __future__ import annotations

import argparse
import json
import math
import threading

import numpy as np
import pytest

from engine.bench import commands as bench_commands
from engine.bench.dfg import dfg_scenario, pressure_probe
from engine.boundary import inflow_velocity
from engine.data.trajectory import Trajectory
from engine.errors import ConfigError, DivergenceError
from engine.forces import SurfaceForces
from engine.geometry import build_tunnel_mesh
from engine.nodetypes import NodeType
from engine.scenario import Circle, Inflow, MeshSpec, Scenario, TimeSpec, Tunnel
from engine.solver import SolverConfig, solve, steady_state
from engine.solver import commands as solver_commands
from engine.solver.threads import solver_map

DFG_2D1_CD = 5.57953523384


@pytest.fixture(scope="module")
def dfg_2d1():
    scenario = dfg_scenario("2d-1", "coarse")
    mesh = build_tunnel_mesh(scenario)
    return scenario, mesh, steady_state(scenario, mesh)


def run_command(*argv: str) -> int:
    """Run one of this module's commands through its own parser (the full CLI imports torch)."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    for module in (solver_commands, bench_commands):
        module.register(sub)
    args = parser.parse_args(argv)
    return args.run(args)


def test_steady_dfg_2d1_drag_within_one_percent(dfg_2d1):
    scenario, mesh, frame = dfg_2d1
    c_d, c_l = frame.coefficients[0]
    assert c_d == pytest.approx(DFG_2D1_CD, rel=0.01)
    assert 0.0 < c_l < 0.02
    front, back = pressure_probe(mesh, np.array([[0.15, 0.2], [0.25, 0.2]]))(frame.p)
    assert front - back == pytest.approx(0.1175, rel=0.02)
    # boundary values: parabolic inflow at full speed, rest on walls and cylinder
    inflow = mesh.nodes_of(NodeType.INFLOW)
    expected = inflow_velocity(scenario, mesh.points[inflow], 1e9)
    np.testing.assert_allclose(frame.u[inflow], expected[:, 0], atol=1e-12)
    for kind in (NodeType.WALL_BOUNDARY, NodeType.OBSTACLE):
        nodes = mesh.nodes_of(kind)
        assert np.abs(frame.u[nodes]).max() == 0.0 and np.abs(frame.v[nodes]).max() == 0.0


def test_surface_forces_agree_with_volume_forces(dfg_2d1):
    scenario, mesh, frame = dfg_2d1
    forces, coefficients = SurfaceForces(mesh, scenario)(frame.u, frame.v, frame.p)
    assert forces.shape == coefficients.shape == (1, 2)
    drag = frame.forces[0, 0]
    assert forces[0, 0] == pytest.approx(drag, rel=0.06)
    assert abs(forces[0, 1] - frame.forces[0, 1]) < 0.01 * drag
    np.testing.assert_allclose(coefficients / forces, frame.coefficients / frame.forces)


def _tiny(walls: str = "no-slip", profile: str = "parabolic", steps: int = 5) -> Scenario:
    return Scenario(
        tunnel=Tunnel(length=1.0, height=0.4, walls=walls),  # type: ignore[arg-type]
        obstacles=(Circle((0.3, 0.2), 0.06),),
        inflow=Inflow(profile=profile, mean_speed=0.5, angle_deg=0.0, ramp_time=0.02),  # type: ignore[arg-type]
        mesh=MeshSpec(size=0.08, obstacle_size=0.04),
        time=TimeSpec(dt=0.02, steps=steps),
    )


def test_solve_yields_frames_with_boundary_values_imposed():
    scenario = _tiny()
    mesh = build_tunnel_mesh(scenario)
    frames = list(solve(scenario, mesh))
    assert [f.step for f in frames] == list(range(6))
    assert [f.time for f in frames] == pytest.approx([0.02 * k for k in range(6)])
    first = frames[0]
    assert not first.u.any() and not first.v.any() and not first.p.any()
    inflow = mesh.nodes_of(NodeType.INFLOW)
    for f in frames[1:]:
        assert f.u.shape == f.v.shape == f.p.shape == (mesh.num_nodes,)
        assert f.forces.shape == f.coefficients.shape == (1, 2)
        expected = inflow_velocity(scenario, mesh.points[inflow], f.time)
        np.testing.assert_allclose(f.u[inflow], expected[:, 0], atol=1e-12)
        walls = mesh.nodes_of(NodeType.WALL_BOUNDARY)
        assert np.abs(f.u[walls]).max() == 0.0
        assert np.all(np.isfinite(f.p))
    last = frames[-1]
    assert last.u.max() > 0.5  # the flow is moving and speeds up past the cylinder
    assert last.forces[0, 0] > 0.0  # drag points downstream


def test_slip_walls_fix_only_the_normal_velocity():
    scenario = _tiny(walls="slip", profile="uniform", steps=3)
    mesh = build_tunnel_mesh(scenario)
    last = list(solve(scenario, mesh))[-1]
    walls = mesh.nodes_of(NodeType.WALL_BOUNDARY)
    interior_walls = walls[(mesh.points[walls, 0] > 0.05) & (mesh.points[walls, 0] < 0.95)]
    assert np.abs(last.v[walls]).max() == 0.0
    assert last.u[interior_walls].min() > 0.3  # the flow slides along the wall


def test_cancel_stops_between_steps():
    scenario = _tiny(steps=50)
    cancel = threading.Event()
    frames = []
    for frame in solve(scenario, cancel=cancel):
        frames.append(frame)
        if frame.step == 2:
            cancel.set()
    assert [f.step for f in frames] == [0, 1, 2]


def test_blow_up_raises_divergence_error():
    scenario = _tiny(steps=5)
    with pytest.raises(DivergenceError) as info:
        list(solve(scenario, config=SolverConfig(blowup_factor=0.2)))
    assert info.value.step >= 1


def test_solve_command_writes_a_trajectory(tmp_path):
    scenario = _tiny(steps=10)
    path = tmp_path / "tiny.json"
    scenario.save(path)
    out = tmp_path / "traj.h5"
    assert run_command("solve", str(path), "-o", str(out), "--steps", "3", "--quiet") == 0
    traj = Trajectory.load(out)
    assert traj.num_steps == 4
    assert traj.time == pytest.approx([0.0, 0.02, 0.04, 0.06])
    assert Scenario.from_dict(traj.scenario).obstacles == scenario.obstacles
    assert traj.attrs["source"] == "slipstream-reference-solver"
    assert traj.attrs["internal_dt"] <= 0.02
    assert traj.forces.shape == (4, 1, 2)


def test_solve_command_max_dt_refines_the_internal_step(tmp_path):
    scenario = _tiny(steps=10)
    path = tmp_path / "tiny.json"
    scenario.save(path)
    coarse, fine = tmp_path / "coarse.h5", tmp_path / "fine.h5"
    assert run_command("solve", str(path), "-o", str(coarse), "--steps", "10", "--quiet") == 0
    args = ("solve", str(path), "-o", str(fine), "--steps", "10", "--quiet", "--max-dt", "0.005")
    assert run_command(*args) == 0
    a, b = Trajectory.load(coarse), Trajectory.load(fine)
    assert b.attrs["internal_dt"] == pytest.approx(0.005)
    assert b.attrs["internal_dt"] < a.attrs["internal_dt"]
    assert b.time == pytest.approx(a.time)  # frames stay at the scenario's dt
    # A finer step is a slightly different, equally valid solution of the same flow.
    gap = np.sqrt(np.mean((b.velocity[-1] - a.velocity[-1]) ** 2))
    assert 0 < gap < 0.05 * np.sqrt(np.mean(a.velocity[-1] ** 2)), gap


def test_solve_command_rejects_a_bad_max_dt(tmp_path):
    path = tmp_path / "tiny.json"
    _tiny(steps=3).save(path)
    with pytest.raises(ConfigError, match="--max-dt"):
        run_command("solve", str(path), "-o", str(tmp_path / "x.h5"), "--max-dt", "0")
    assert not (tmp_path / "x.h5").exists()


def test_bench_dfg_reports_json(capsys):
    code = run_command("bench", "dfg", "--case", "2d-1", "--resolution", "coarse", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["case"] == "2d-1" and result["num_nodes"] > 500
    assert result["values"]["c_D"] == pytest.approx(DFG_2D1_CD, rel=0.01)
    assert set(result["checks"]) == {"c_D", "c_L", "delta_p"}
    assert code == (0 if result["passed"] else 1)


def test_solver_map_keeps_the_order_in_processes_and_in_this_one():
    items = [9.0, 1.0, 4.0, 16.0]
    assert solver_map(math.sqrt, items, workers=2) == [3.0, 1.0, 2.0, 4.0]
    assert solver_map(math.sqrt, items, workers=1) == [3.0, 1.0, 2.0, 4.0]
