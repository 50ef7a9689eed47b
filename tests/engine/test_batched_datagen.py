"""The GPU data-generation pipeline, run on the CPU: files, manifest, restart, failures."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from engine.data.dataset import MANIFEST_NAME
from engine.data.gpu_datagen import (
    DatagenJob,
    GpuDatagenConfig,
    jobs_for,
    run_datagen_on_device,
    run_gpu_datagen,
)
from engine.data.trajectory import Trajectory
from engine.geometry import build_tunnel_mesh
from engine.scenario import Fluid, Scenario, TimeSpec
from engine.solver.transient import solve


def _scenario(x: float, dt: float = 0.01) -> Scenario:
    return Scenario.from_dict(
        {
            "tunnel": {"length": 1.0, "height": 0.41},
            "obstacles": [{"shape": "circle", "center": [x, 0.2], "radius": 0.05}],
            "inflow": {"mean_speed": 1.0, "ramp_time": 0.05},
            "mesh": {"size": 0.05, "obstacle_size": 0.02},
            "time": {"dt": dt, "steps": 5},
        }
    )


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_datagen_writes_trajectories_that_match_the_cpu_solver(tmp_path):
    # Two sub-step counts (dt 0.01 and 0.03) make two batch groups; one job cannot be meshed.
    scenarios = [_scenario(0.2), _scenario(0.3), _scenario(0.25, dt=0.03)]
    jobs = [*jobs_for(scenarios), DatagenJob("broken.h5", _scenario(0.98))]
    config = GpuDatagenConfig(device="cpu", workers=1, writers=1, batch_size=2, processes=False)
    report = run_gpu_datagen(jobs, tmp_path, config)

    assert sorted(report.written) == ["traj-00000.h5", "traj-00001.h5", "traj-00002.h5"]
    assert list(report.failed) == ["broken.h5"]
    assert sorted(report.batches) == [1, 2]
    assert report.trajectories_stepped == 3  # every batch ran all its steps
    # When each file landed: in order, within the run (the throughput benchmark's clock).
    assert len(report.written_at) == 3 and report.written_at == sorted(report.written_at)
    assert 0 < report.written_at[-1] <= report.wall_time_s + 0.01  # wall vs monotonic clock
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["count"] == 3
    assert not list(tmp_path.glob("*.partial"))

    written = Trajectory.load(tmp_path / "traj-00002.h5")
    assert written.attrs["solver"] == "ipcs-p2p1-batched"
    assert written.velocity.shape == (6, written.num_nodes, 2)
    assert Scenario.from_dict(written.scenario) == scenarios[2]
    reference = list(solve(scenarios[2], build_tunnel_mesh(scenarios[2])))
    ref_velocity = np.stack([np.stack([f.u, f.v], axis=-1) for f in reference])
    np.testing.assert_allclose(written.velocity, ref_velocity, atol=1e-5)
    np.testing.assert_allclose(written.time, [f.time for f in reference])
    np.testing.assert_allclose(
        written.coefficients, np.stack([f.coefficients for f in reference]), rtol=1e-4, atol=1e-5
    )

    again = run_gpu_datagen(jobs, tmp_path, config)
    assert sorted(again.skipped) == sorted(report.written)
    assert again.written == []


def test_device_datagen_makes_the_cpu_generators_dataset(tmp_path):
    """Same file names, scenarios and sharding as ``datagen`` on the CPU; failures are logged."""
    from engine.data.datagen import FAILURES_NAME, DatagenConfig, scenario_for

    config = DatagenConfig(
        count=3, seed=5, out_dir=tmp_path, workers=3, steps=2, rank=1, world_size=2
    )
    (tmp_path / FAILURES_NAME).write_text('{"index": 3, "name": "traj-000003.h5"}\n')
    report = run_datagen_on_device(config, "cpu", processes=False)
    assert report.written == ["traj-000001.h5"]  # rank 1 of 2 takes 1 and 3; 3 failed before
    written = Trajectory.load(tmp_path / "traj-000001.h5")
    expected = scenario_for(5, 1).replace(time=TimeSpec(0.01, 2))
    assert Scenario.from_dict(written.scenario) == expected
    assert written.attrs["index"] == 1 and written.attrs["seed"] == 5
    assert written.attrs["source"] == "slipstream-reference-solver"
    assert written.num_steps == 3


def test_a_capped_internal_step_gives_the_cpu_solvers_trajectory_at_that_step(tmp_path):
    from engine.solver import SolverConfig

    scenario = _scenario(0.2)
    solver = SolverConfig(max_dt=0.0025)
    config = GpuDatagenConfig(device="cpu", workers=1, writers=1, processes=False, solver=solver)
    report = run_gpu_datagen(jobs_for([scenario]), tmp_path, config)
    assert report.written == ["traj-00000.h5"]
    written = Trajectory.load(tmp_path / "traj-00000.h5")
    assert written.attrs["internal_dt"] == pytest.approx(0.0025)
    mesh = build_tunnel_mesh(scenario)
    reference = list(solve(scenario, mesh, config=solver))
    ref_velocity = np.stack([np.stack([f.u, f.v], axis=-1) for f in reference])
    np.testing.assert_allclose(written.velocity, ref_velocity, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_datagen_on_cuda_matches_the_cpu_solver(tmp_path):
    scenario = _scenario(0.3)
    config = GpuDatagenConfig(device="cuda", workers=1, writers=1, processes=False)
    report = run_gpu_datagen(jobs_for([scenario, _scenario(0.2)]), tmp_path, config)
    assert report.batches == [2] and len(report.written) == 2
    written = Trajectory.load(tmp_path / "traj-00000.h5")
    reference = list(solve(scenario, build_tunnel_mesh(scenario)))
    ref_velocity = np.stack([np.stack([f.u, f.v], axis=-1) for f in reference])
    np.testing.assert_allclose(written.velocity, ref_velocity, atol=1e-5)


def test_a_stopped_run_starts_no_batch(tmp_path):
    stop = threading.Event()
    stop.set()
    config = GpuDatagenConfig(device="cpu", workers=1, writers=1, processes=False)
    report = run_gpu_datagen(jobs_for([_scenario(0.2)]), tmp_path, config, stop=stop)
    assert report.batches == [] and report.written == []
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["count"] == 0


def test_batches_group_by_substeps_only_and_fill_a_memory_budget():
    from engine.data.gpu_datagen import batch_capacity, flow_bytes_padded, group_key
    from engine.solver.batched import prepare_flow

    flow = prepare_flow(_scenario(0.3))
    viscous = prepare_flow(_scenario(0.3).replace(fluid=Fluid(viscosity=0.05)))
    assert viscous.diffusion_number > 10 * flow.diffusion_number
    assert group_key(flow, 5) == group_key(viscous, 5) == (flow.substeps, 5)
    assert group_key(flow, 6) != group_key(flow, 5)

    config = GpuDatagenConfig(device="cuda")
    each = flow_bytes_padded(flow, config)
    assert batch_capacity([flow] * 10, config, budget=3.5 * each) == 3
    assert batch_capacity([flow] * 2, config, budget=3.5 * each) == config.max_batch_size
    assert batch_capacity([flow] * 10, config, budget=None) == config.cpu_batch_size


def test_host_memory_bound_on_flows_held_ahead_still_makes_every_trajectory(tmp_path):
    # Room for no prepared flow at all: each batch runs as soon as meshing stops arriving.
    config = GpuDatagenConfig(
        device="cpu", workers=1, writers=1, processes=False, host_memory_fraction=1e-12
    )
    jobs = jobs_for([_scenario(x) for x in (0.2, 0.25, 0.3)])
    report = run_gpu_datagen(jobs, tmp_path, config)
    assert sorted(report.written) == sorted(j.name for j in jobs)
    assert sum(report.batches) == 3 and max(report.batches) <= 2  # 2 = the first round
