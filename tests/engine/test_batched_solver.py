"""The batched torch solver against the CPU reference solver, on real gmsh meshes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.geometry import build_tunnel_mesh
from engine.scenario import Scenario
from engine.solver.batched import BatchRun, BatchSettings, prepare_flow
from engine.solver.batched.linalg import KrylovResult
from engine.solver.steady import steady_state
from engine.solver.transient import solve

DFG_CD = 5.57953523384
# Stragglers finish in a smaller batch, which changes their iterates within the tolerance;
# tests of "a batch solves each system as if alone" turn that off to compare to ~1e-9.
NO_STRAGGLERS = BatchSettings(straggler_share=0.0)


def _scenario(**changes) -> Scenario:
    data = {
        "tunnel": {"length": 1.0, "height": 0.41, "walls": "no-slip"},
        "obstacles": [{"shape": "circle", "center": [0.2, 0.2], "radius": 0.05}],
        "inflow": {"mean_speed": 1.0, "ramp_time": 0.1},
        "fluid": {"viscosity": 1e-3},
        "mesh": {"size": 0.05, "obstacle_size": 0.02},
        "time": {"dt": 0.01, "steps": 12},
    }
    data.update(changes)
    return Scenario.from_dict(data)


# Two obstacles, slip walls, a uniform inflow turned by 8°: every boundary-condition path.
MIXED = _scenario(
    tunnel={"length": 1.2, "height": 0.5, "walls": "slip"},
    obstacles=[
        {"shape": "rectangle", "center": [0.25, 0.3], "size": [0.08, 0.05], "angle_deg": 20},
        {"shape": "ellipse", "center": [0.55, 0.2], "axes": [0.06, 0.03], "angle_deg": -10},
    ],
    inflow={"profile": "uniform", "mean_speed": 0.8, "angle_deg": 8.0, "ramp_time": 0.05},
)


@pytest.fixture(autouse=True)
def _one_thread():
    # torch's CPU CSR kernels crawl when OpenMP threads fight other processes for 2 cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _relative_rmse(a, b) -> float:
    da = np.stack([a.u, a.v])
    db = np.stack([b.u, b.v])
    return float(np.sqrt(np.mean((da - db) ** 2)) / np.sqrt(np.mean(da**2)))


def _agrees_with_cpu(scenario: Scenario, device: str) -> None:
    mesh = build_tunnel_mesh(scenario)
    cpu = list(solve(scenario, mesh))
    run = BatchRun([prepare_flow(scenario, mesh)], device)
    batched = [frames[0] for frames in run.frames(scenario.time.steps)]
    assert len(batched) == len(cpu) == scenario.time.steps + 1
    for a, b in zip(cpu[1:], batched[1:], strict=True):
        assert b.time == pytest.approx(a.time)
        assert _relative_rmse(a, b) < 1e-4
        scale = np.abs(a.p).max()
        np.testing.assert_allclose(b.p, a.p, atol=1e-4 * scale)
        np.testing.assert_allclose(b.coefficients, a.coefficients, rtol=1e-3, atol=1e-4)


def test_batched_solver_reproduces_the_cpu_solver():
    _agrees_with_cpu(MIXED, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_solver_on_cuda_reproduces_the_cpu_solver():
    _agrees_with_cpu(MIXED, "cuda")


def test_a_batch_of_different_meshes_matches_each_run_alone():
    other = _scenario(obstacles=[{"shape": "circle", "center": [0.3, 0.22], "radius": 0.04}])
    flows = [prepare_flow(s) for s in (MIXED, other)]
    assert flows[0].num_velocity_dofs != flows[1].num_velocity_dofs
    steps = 6
    # Padding changes the summation order of the Krylov dot products, so a residual that sits
    # right at the tolerance may take one iteration more or less: equal to ~1e-9, not bitwise.
    together = list(BatchRun(flows, settings=NO_STRAGGLERS).frames(steps))
    for b, flow in enumerate(flows):
        alone = list(BatchRun([flow], settings=NO_STRAGGLERS).frames(steps))
        for pair, single in zip(together, alone, strict=True):
            np.testing.assert_allclose(pair[b].u, single[0].u, rtol=1e-7, atol=1e-8)
            np.testing.assert_allclose(pair[b].p, single[0].p, rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(pair[b].forces, single[0].forces, rtol=1e-6, atol=1e-9)


def test_stragglers_finish_in_their_own_batch_to_the_same_tolerance():
    other = _scenario(obstacles=[{"shape": "circle", "center": [0.3, 0.22], "radius": 0.04}])
    flows = [prepare_flow(s) for s in (MIXED, other)]
    runs = [
        BatchRun(flows, settings=s)
        for s in (BatchSettings(straggler_share=0.5, straggler_min_batch=2), NO_STRAGGLERS)
    ]
    last = [list(run.frames(6))[-1] for run in runs]
    for b in range(2):
        assert _relative_rmse(last[1][b], last[0][b]) < 1e-6
    with_stragglers, without = (r.stepper.iterations["momentum"] for r in runs)
    assert with_stragglers < without  # the batch stopped paying for its slowest system
    needed = [r.stepper.system_iterations["momentum"] for r in runs]
    assert torch.all((needed[0] - needed[1]).abs() <= 0.25 * needed[1] + 4)


def test_a_diverging_trajectory_is_dropped_without_disturbing_the_batch():
    flow = prepare_flow(_scenario())
    doomed = dataclasses.replace(flow, blowup_limit=1e-3)
    run = BatchRun([doomed, flow], settings=NO_STRAGGLERS)
    frames = list(run.frames(3))
    assert set(run.failures) == {0}
    assert run.failures[0].step == 1
    assert all(f[0] is None for f in frames[1:])
    alone = list(BatchRun([flow]).frames(3))
    np.testing.assert_allclose(frames[-1][1].u, alone[-1][0].u, rtol=1e-7, atol=1e-8)


class _BrokenKrylov:
    """Stands in for the fp32 iterations breaking down: returns its guess, residual inf."""

    def solve(self, b: torch.Tensor, x0: torch.Tensor) -> KrylovResult:
        batch = b.shape[0]
        stuck = torch.full((batch,), torch.inf, dtype=b.dtype)
        return KrylovResult(x0, 0, stuck, torch.zeros(batch, dtype=torch.int64))


def _broken_run(flow, budget: int) -> BatchRun:
    settings = BatchSettings(straggler_share=0.0, direct_solves_per_trajectory=budget)
    run = BatchRun([flow], settings=settings)
    run.stepper._momentum.solver = _BrokenKrylov()
    run.stepper._mass.solver = _BrokenKrylov()
    return run


def test_a_broken_down_krylov_solve_is_redone_by_a_sparse_lu():
    # Every momentum and mass solve fails, so each is redone on the host by LU (as the CPU
    # solver falls back to LU): the trajectory is the one the iterations would have made.
    flow = prepare_flow(_scenario())
    run = _broken_run(flow, budget=100)
    frames = list(run.frames(3))
    assert not run.failures
    assert run.stepper.direct_solves == 2 * 3 * run.substeps  # momentum and mass, each sub-step
    reference = list(BatchRun([flow], settings=NO_STRAGGLERS).frames(3))
    for redone, iterated in zip(frames, reference, strict=True):
        np.testing.assert_allclose(redone[0].u, iterated[0].u, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(redone[0].p, iterated[0].p, rtol=1e-6, atol=1e-8)


def test_a_trajectory_fails_once_its_sparse_lu_budget_is_spent():
    run = _broken_run(prepare_flow(_scenario()), budget=1)
    frames = list(run.frames(2))
    assert frames[1] == [None]
    assert run.failures[0].step == 1
    assert "did not converge" in str(run.failures[0])


def test_batched_time_stepping_reaches_the_dfg_2d1_steady_drag():
    """Coarse DFG 2D-1: the transient settles on Newton's steady state, c_D within 1%."""
    scenario = Scenario.from_dict(
        {
            "tunnel": {"length": 2.2, "height": 0.41},
            "obstacles": [{"shape": "circle", "center": [0.2, 0.2], "radius": 0.05}],
            "inflow": {"mean_speed": 0.2, "ramp_time": 0.5},
            "fluid": {"viscosity": 1e-3},
            "mesh": {"size": 0.04, "obstacle_size": 0.01},
            "time": {"dt": 0.1, "steps": 60},
        }
    )
    mesh = build_tunnel_mesh(scenario)
    *_, last = BatchRun([prepare_flow(scenario, mesh)]).frames(scenario.time.steps)
    c_d = last[0].coefficients[0, 0]
    assert c_d == pytest.approx(DFG_CD, rel=0.01)
    newton = steady_state(scenario, mesh).coefficients[0, 0]
    assert c_d == pytest.approx(newton, rel=1e-3)


def test_agreement_benchmark_with_stragglers_matches_the_cpu_solver():
    """`bench agreement --stragglers`: envelope flows through the straggler path (on in data
    generation from batch 128) against the CPU solver, frame by frame."""
    import argparse

    from engine.solver.batched.bench import run_agreement_bench

    args = argparse.Namespace(
        device="cpu", count=2, nodes=600, steps=10, dt=0.01, seed=0, stragglers=True
    )
    report = run_agreement_bench(args)
    assert report["stragglers"] and report["passed"]
    assert len(report["trajectories"]) == 2
    assert report["worst_relative_velocity_rmse"] < 1e-5
