"""Envelope sampling and CPU data generation: real meshes, real solver, files on disk."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from engine.data import datagen
from engine.data.datagen import (
    FAILURES_NAME,
    DatagenConfig,
    failure_log,
    generate,
    scenario_for,
    shard,
    trajectory_name,
)
from engine.data.dataset import MANIFEST_NAME, open_dataset
from engine.data.envelope import SHAPE_CLASSES, sample_scenario
from engine.data.trajectory import Trajectory
from engine.errors import ConfigError, DataFormatError
from engine.scenario import Scenario


def run_command(*argv: str) -> int:
    """Run ``datagen`` through its own parser (the full CLI would import every command)."""
    parser = argparse.ArgumentParser()
    datagen.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_envelope_samples_are_valid_and_span_the_ranges():
    scenarios = [sample_scenario(np.random.default_rng([1, i])) for i in range(40)]
    shapes = {o.shape for s in scenarios for o in s.obstacles}
    assert shapes == set(SHAPE_CLASSES)
    for s in scenarios:
        assert Scenario.from_dict(s.to_dict()) == s
        assert 10.0 - 1e-9 <= s.reynolds <= 300.0 + 1e-9
        assert 1 <= len(s.obstacles) <= 3
        assert 1.5 <= s.tunnel.length / s.tunnel.height <= 3.0
        assert (s.time.dt, s.time.steps) == (0.01, 600)
        for o in s.obstacles:
            if o.shape == "naca":
                assert -15.0 <= o.angle_deg <= 15.0
    assert {s.tunnel.walls for s in scenarios} == {"no-slip", "slip"}
    assert {s.inflow.profile for s in scenarios} == {"parabolic", "uniform"}
    assert {len(s.obstacles) for s in scenarios} == {1, 2, 3}


def test_scenarios_are_reproducible_per_index():
    assert scenario_for(5, 3) == scenario_for(5, 3)
    assert scenario_for(5, 3) != scenario_for(5, 4)
    assert scenario_for(5, 3).name == "traj-000003"


def test_shards_partition_the_indices():
    parts = [shard(23, r, 4) for r in range(4)]
    merged = sorted(i for p in parts for i in p)
    assert merged == list(range(23))
    assert all(set(a).isdisjoint(b) for k, a in enumerate(parts) for b in parts[k + 1 :])
    assert shard(3, 0, 1) == [0, 1, 2]


def test_config_rejects_bad_values(tmp_path):
    with pytest.raises(DataFormatError, match="rank"):
        DatagenConfig(count=4, seed=0, out_dir=tmp_path, rank=2, world_size=2)
    with pytest.raises(DataFormatError, match="count"):
        DatagenConfig(count=0, seed=0, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="--max-dt"):
        run_command("datagen", "--count", "1", "-o", str(tmp_path), "--max-dt", "-0.001")
    assert not list(tmp_path.glob("*.h5"))


def test_datagen_writes_trajectories_and_manifest_and_restarts(tmp_path):
    config = DatagenConfig(count=3, seed=11, out_dir=tmp_path, workers=2, steps=2)
    results = list(generate(config))
    assert sorted(r.status for r in results) == ["written"] * 3
    for r in results:
        traj = Trajectory.load(tmp_path / r.name)
        assert traj.num_steps == 3 and traj.num_nodes == r.num_nodes > 500
        assert traj.attrs["seed"] == 11 and traj.attrs["index"] == r.index
        scenario = Scenario.from_dict(traj.scenario)
        assert scenario.obstacles == scenario_for(11, r.index).obstacles
        assert np.all(np.isfinite(traj.velocity))
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["count"] == 3 and manifest["seed"] == 11
    assert len(open_dataset(tmp_path).files()) == 3
    assert not list(tmp_path.glob("*.partial"))

    again = list(generate(config))
    assert [r.status for r in again] == ["skipped"] * 3


def test_failures_are_logged_and_skipped_on_rerun(tmp_path):
    # A rank whose only case has a file in the way of its output: saving fails, the run goes on.
    blocker = tmp_path / (trajectory_name(1) + ".partial")
    blocker.mkdir(parents=True)
    config = DatagenConfig(count=2, seed=0, out_dir=tmp_path, steps=1, rank=1, world_size=2)
    (result,) = list(generate(config))
    assert result.status == "failed" and result.index == 1
    logged = [json.loads(line) for line in (tmp_path / FAILURES_NAME).read_text().splitlines()]
    assert [e["index"] for e in logged] == [1]
    assert [r.status for r in generate(config)] == ["skipped"]
    # The log names the trajectory and why; a torn last line (a killed run) is passed over.
    with (tmp_path / FAILURES_NAME).open("a") as f:
        f.write('{"index": 7, "na')
    (entry,) = failure_log(tmp_path)
    assert entry["name"] == trajectory_name(1) and entry["error"] == result.error
    assert entry["error"]


def test_datagen_command_shards_by_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    out = tmp_path / "data"
    args = ["datagen", "--count", "4", "--seed", "2", "-o", str(out), "--workers", "1"]
    assert run_command(*args, "--steps", "1", "--quiet") == 0
    assert sorted(p.name for p in out.glob("*.h5")) == [trajectory_name(1)]
    assert "1 written" in capsys.readouterr().out


def test_datagen_command_caps_the_solvers_internal_step(tmp_path):
    out = tmp_path / "data"
    args = ["datagen", "--count", "1", "-o", str(out), "--workers", "1", "--steps", "1"]
    assert run_command(*args, "--max-dt", "0.001", "--quiet") == 0
    written = Trajectory.load(out / trajectory_name(0))
    assert written.attrs["internal_dt"] == pytest.approx(0.001)
