"""evaluate: rollouts of a model over a solved test set, the table, metrics into the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.evaluation.evaluate import evaluate, markdown_table, summarise
from engine.geometry import build_tunnel_mesh
from engine.models.card import ModelCard
from engine.models.simulator import Simulator, SimulatorConfig
from engine.scenario import Circle, Inflow, MeshSpec, Rectangle, Scenario, TimeSpec
from engine.solver.transient import solve

STEPS = 8


@pytest.fixture(scope="module")
def testset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("testset")
    shapes = {
        "cylinder": Circle((0.3, 0.2), 0.05),
        "square": Rectangle((0.3, 0.2), (0.08, 0.08), 45),
    }
    for name, shape in shapes.items():
        scenario = Scenario(
            obstacles=(shape,),
            inflow=Inflow(mean_speed=1.0, ramp_time=0.05),
            mesh=MeshSpec(size=0.07, obstacle_size=0.025),
            time=TimeSpec(dt=0.02, steps=STEPS),
            name=name,
        )
        mesh = build_tunnel_mesh(scenario)
        Trajectory.from_frames(mesh, solve(scenario, mesh), scenario.to_dict()).save(
            root / f"{name}.h5"
        )
    return root


@pytest.fixture
def model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    cfg = SimulatorConfig.from_dict(
        {
            "architecture": "meshgraphnet",
            "name": "tiny-eval",
            "arguments": {"latent": 16, "num_blocks": 1},
        }
    )
    Simulator.from_config(cfg).save(tmp_path / "tiny-eval")
    return tmp_path / "tiny-eval"


def test_evaluate_yields_cases_then_the_mean(testset: Path, model: Path) -> None:
    results = list(evaluate(Simulator.load(model), testset, steps=5, long_steps=12))
    *cases, summary = results
    assert [c["case"] for c in cases] == ["cylinder", "square"]
    for case in cases:
        assert case["steps"] == 5 and case["long_steps"] == 12
        assert case["rollout_rmse_relative"]["velocity"] > 0
        assert "one_step_rmse_relative" in case and len(case["forces"]) == 1
    mean = summary["mean"]
    assert mean["cases"] == 2
    expected = sum(c["rollout_rmse_relative"]["velocity"] for c in cases) / 2
    assert mean["velocity_rmse_rel"] == pytest.approx(expected)
    # too short to shed: force errors are not averaged over non-shedding cases
    assert mean["shedding_obstacles"] == 0 and mean["strouhal_error"] is None
    expected = sum(c["wake"]["mean_flow_velocity_rmse_relative"] for c in cases) / 2
    assert mean["mean_flow_velocity_rmse_rel"] == pytest.approx(expected)
    # The start-up (a 0.05 s ramp and as long again: steps 1-5) is measured on every obstacle.
    startups = [c["forces"][0]["startup"] for c in cases]
    assert all(s["until_time"] == pytest.approx(0.1) for s in startups)
    expected = sum(s["cl_max_abs_error"] for s in startups) / 2
    assert mean["startup_cl_error"] == pytest.approx(expected) and expected > 0
    table = markdown_table(cases, mean).splitlines()
    assert len(table) == 2 + 2 + 1 and table[-1].startswith("| **mean** (2 cases)")
    assert all(row.count("|") == 13 for row in table)  # 12 columns in every row


def test_steps_are_capped_by_the_reference(testset: Path, model: Path) -> None:
    *cases, _ = evaluate(Simulator.load(model), testset, steps=600)
    assert all(c["steps"] == STEPS for c in cases)


def test_evaluate_command_writes_json_and_updates_the_card(
    testset: Path, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(model),
            "--testset",
            str(testset),
            "--steps",
            "4",
            "--json",
            str(out),
            "--update-card",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert "start-up forces (the inflow ramp and as long again)" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["model"] == "tiny-eval" and len(results["cases"]) == 2
    card = ModelCard.load(model.with_suffix(".json"))
    assert card.metrics["testset"] == testset.name and card.metrics["steps"] == 4
    assert card.metrics["velocity_rmse_rel"] == pytest.approx(results["mean"]["velocity_rmse_rel"])
    Simulator.load(model)  # the updated card still loads with its weights
    assert results["mass_projection"] is True and card.metrics["mass_projection"] is True


def test_evaluate_command_can_leave_the_projection_out(
    testset: Path, model: Path, tmp_path: Path
) -> None:
    outs = {flag: tmp_path / f"eval{flag}.json" for flag in ("", "--no-projection")}
    for flag, out in outs.items():
        args = ["evaluate", "--model", str(model), "--testset", str(testset), "--steps", "4"]
        assert main([*args, "--json", str(out), "--device", "cpu", *([flag] if flag else [])]) == 0
    projected, plain = (json.loads(out.read_text()) for out in outs.values())
    assert projected["mass_projection"] is True and plain["mass_projection"] is False
    assert projected["mean"]["velocity_rmse_rel"] != plain["mean"]["velocity_rmse_rel"]


def test_evaluate_command_switches_the_projection_pressure_and_records_it(
    testset: Path, model: Path, tmp_path: Path
) -> None:
    runs = {}
    for setting in ("on", "off"):
        out = tmp_path / f"eval-{setting}.json"
        args = ["evaluate", "--model", str(model), "--testset", str(testset), "--steps", "4"]
        args += ["--json", str(out), "--device", "cpu", "--projection-pressure", setting]
        assert main([*args, "--update-card"] if setting == "on" else args) == 0
        runs[setting] = json.loads(out.read_text())
    assert runs["on"]["projection_pressure"] is True and runs["off"]["projection_pressure"] is False
    on, off = runs["on"]["mean"], runs["off"]["mean"]
    assert on["pressure_rmse_rel"] != off["pressure_rmse_rel"]
    card = ModelCard.load(model.with_suffix(".json"))  # --update-card keeps the setting it measured
    assert card.projection_pressure is True and card.metrics["projection_pressure"] is True
    assert Simulator.load(model).card.projection_pressure is True


def test_evaluate_command_files_a_side_measurement_under_a_key(
    testset: Path, model: Path, tmp_path: Path
) -> None:
    args = ["evaluate", "--model", str(model), "--testset", str(testset), "--steps", "4"]
    args += ["--device", "cpu", "--update-card"]
    assert main(args) == 0
    headline = ModelCard.load(model.with_suffix(".json")).metrics
    out = tmp_path / "off.json"
    side = [*args, "--projection-pressure", "on", "--card-key", "with_pressure", "--json", str(out)]
    assert main(side) == 0
    card = ModelCard.load(model.with_suffix(".json"))
    assert card.projection_pressure is False  # a side measurement leaves the shipped setting
    stored = card.metrics.pop("with_pressure")
    assert card.metrics == headline  # and the headline metrics
    mean = json.loads(out.read_text())["mean"]
    assert stored["projection_pressure"] is True and stored["steps"] == 4
    assert stored["velocity_rmse_rel"] == pytest.approx(mean["velocity_rmse_rel"])
    assert stored["diverged_at"] == {}
    no_update = ["evaluate", "--model", str(model), "--testset", str(testset), "--card-key", "x"]
    assert main(no_update) == 2  # a key without --update-card is refused


def test_saved_results_fill_the_card_as_the_rollouts_would(
    testset: Path, model: Path, tmp_path: Path
) -> None:
    """Evaluated on a GPU machine, stored in the card here: the card reads the same."""
    out = tmp_path / "gpu.json"
    args = ["evaluate", "--model", str(model), "--steps", "4", "--device", "cpu"]
    assert main([*args, "--testset", str(testset), "--json", str(out), "--update-card"]) == 0
    card_path = model.with_suffix(".json")
    measured = ModelCard.load(card_path)
    blank = ModelCard.load(card_path)
    blank.metrics, blank.projection_pressure = {}, True
    blank.save(card_path)
    assert main(["evaluate", "--model", str(model), "--from-json", str(out), "--update-card"]) == 0
    stored = ModelCard.load(card_path)
    assert stored.metrics == measured.metrics and stored.projection_pressure is False
    side = ["evaluate", "--model", str(model), "--from-json", str(out), "--update-card"]
    assert main([*side, "--card-key", "gpu"]) == 0
    assert ModelCard.load(card_path).metrics["gpu"]["velocity_rmse_rel"] == pytest.approx(
        json.loads(out.read_text())["mean"]["velocity_rmse_rel"]
    )


def test_saved_results_of_another_model_or_no_results_are_refused(
    testset: Path, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "other.json"
    results = {"model": "someone-else", "testset": "t", "steps": 4, "long_steps": 0}
    results |= {"mass_projection": True, "projection_pressure": False, "cases": [], "mean": {}}
    out.write_text(json.dumps(results))
    before = model.with_suffix(".json").read_text()
    base = ["evaluate", "--model", str(model), "--update-card"]
    assert main([*base, "--from-json", str(out)]) == 2
    assert "someone-else" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{not json")
    assert main([*base, "--from-json", str(tmp_path / "broken.json")]) == 2
    assert main(base) == 2  # neither a test set nor saved results
    assert main([*base, "--from-json", str(out), "--testset", str(testset)]) == 2
    assert model.with_suffix(".json").read_text() == before  # the card is untouched


def _case(name: str, forces: list[tuple[bool, bool, float | None]]) -> dict:
    """A compared case as evaluate_case returns it; forces: (solver, rollout shed; St error)."""
    return {
        "case": name,
        "nodes": 10,
        "steps": 5,
        "diverged_at": None,
        "rollout_rmse_relative": {"velocity": 0.1, "p": 0.2},
        "one_step_rmse_relative": {"velocity": 0.01},
        "wake": {"mean_flow_velocity_rmse_relative": 0.05, "fluctuation_ratio": None},
        "forces": [
            {
                "obstacle": i,
                "reference": {"shedding": ref},
                "prediction": {"shedding": pred},
                "error": {"cd_mean": 0.1, "cl_amplitude": 0.2, "strouhal": st},
            }
            for i, (ref, pred, st) in enumerate(forces)
        ],
    }


def test_the_mean_counts_the_wakes_that_died() -> None:
    """A dead wake has no Strouhal error to average; the count keeps it from reading as accurate."""
    cases = [
        _case("street", [(True, True, 0.02)]),
        _case("tandem", [(True, False, None), (True, True, 0.3)]),
        _case("airfoil", [(False, False, None)]),  # steady in the solver: not counted at all
    ]
    mean = summarise(cases)
    assert mean["shedding_obstacles"] == 3 and mean["shedding_in_rollout"] == 2
    assert mean["strouhal_error"] == pytest.approx(0.16)  # over the two that shed
    last = markdown_table(cases, mean).splitlines()[-1]
    assert last.endswith("| 0 diverged; 2 of 3 wakes shed |") and last.count("|") == 13


def test_bench_floor_scores_the_solver_against_itself_at_a_finer_step(
    testset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "floor.json"
    args = ["bench", "floor", "--testset", str(testset), "--steps", "6", "--json", str(out)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "reference solver, internal step / 2" in table and "| cylinder |" in table
    results = json.loads(out.read_text())
    assert [c["case"] for c in results["cases"]] == ["cylinder", "square"]
    for case in results["cases"]:
        assert case["steps"] == 6 and case["diverged_at"] is None
        assert case["refined_internal_dt"] == pytest.approx(case["internal_dt"] / 2)
        # Another valid solution of the same flow: close to the reference, yet not identical.
        assert 0.0 < case["rollout_rmse_relative"]["velocity"] < 0.05
        assert "one_step_rmse_relative" not in case
    mean = results["mean"]
    assert mean["one_step_velocity_rmse_rel"] is None
    assert mean["velocity_rmse_rel"] == pytest.approx(
        sum(c["rollout_rmse_relative"]["velocity"] for c in results["cases"]) / 2
    )


def test_bench_floor_refuses_a_factor_that_does_not_refine(
    testset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "floor", "--testset", str(testset), "--factor", "1"]) == 2
    assert "--factor must be above 1" in capsys.readouterr().err
