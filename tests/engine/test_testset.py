"""The held-out test set: named showcase presets plus unseen envelope scenarios, solved for real."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from engine.bench.floor import solver_floor
from engine.data.datagen import scenario_for
from engine.data.trajectory import Trajectory
from engine.errors import ConfigError
from engine.evaluation import testset
from engine.evaluation.testset import SHOWCASE, TESTSET_SEED, build_testset
from engine.solver import SolverConfig


def test_cases_are_the_presets_then_unseen_envelope_draws() -> None:
    cases = testset.testset_scenarios(envelope=2, steps=7)
    names = list(cases)
    assert names[: len(SHOWCASE)] == [f"{n}.h5" for n in SHOWCASE]
    assert names[len(SHOWCASE) :] == ["envelope-000.h5", "envelope-001.h5"]
    assert all(s.time.steps == 7 for s in cases.values())
    assert cases["dfg-2d-2.h5"].obstacles[0].radius == 0.05
    # Not a training draw: campaign seeds are multiples of 100 003 (0 included).
    assert cases["envelope-000.h5"].to_dict() != scenario_for(0, 0).to_dict()
    assert TESTSET_SEED % 100_003 != 0


def test_build_solves_missing_cases_and_keeps_existing_ones(tmp_path: Path) -> None:
    cases = testset.testset_scenarios(envelope=0, steps=2)
    cases = {"dfg-2d-2.h5": cases["dfg-2d-2.h5"]}
    assert build_testset(tmp_path, cases) == []
    trajectory = Trajectory.load(tmp_path / "dfg-2d-2.h5")
    assert trajectory.velocity.shape[0] == 3
    stamp = (tmp_path / "dfg-2d-2.h5").stat().st_mtime_ns
    assert build_testset(tmp_path, cases) == []
    assert (tmp_path / "dfg-2d-2.h5").stat().st_mtime_ns == stamp


def test_build_can_cap_the_solvers_internal_step(tmp_path: Path) -> None:
    cases = testset.testset_scenarios(envelope=0, steps=1)
    cases = {"dfg-2d-2.h5": cases["dfg-2d-2.h5"]}
    parser = argparse.ArgumentParser()
    testset.register(parser.add_subparsers())
    args = parser.parse_args(["testset", "-o", str(tmp_path), "--steps", "1", "--max-dt", "0"])
    with pytest.raises(ConfigError, match="--max-dt"):
        args.run(args)
    assert not list(tmp_path.glob("*.h5"))
    assert build_testset(tmp_path, cases, solver=SolverConfig(max_dt=0.00125)) == []
    assert Trajectory.load(tmp_path / "dfg-2d-2.h5").attrs["internal_dt"] == pytest.approx(0.00125)
    # bench floor halves the step the set was made with, not the default one.
    (case,) = solver_floor(tmp_path, steps=1)["cases"]
    assert case["internal_dt"] == pytest.approx(0.00125)
    assert case["refined_internal_dt"] == pytest.approx(0.000625)
