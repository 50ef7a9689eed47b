"""``python -m engine compare REF.h5 PRED.h5`` and ``python -m engine evaluate --model M``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="errors and force statistics of a predicted trajectory against a reference",
        description="Rollout RMSE per field (absolute and relative to Ū / ρŪ²), mean c_D, c_L "
        "amplitude and Strouhal number of both and their errors; one-step RMSE with --model.",
    )
    p.add_argument("reference", type=Path, help="reference trajectory (.h5)")
    p.add_argument("prediction", type=Path, help="predicted trajectory on the same mesh (.h5)")
    p.add_argument("--model", help="the model, for one-step errors")
    p.add_argument("--device", help="cpu, cuda, … (default: CUDA if available)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    p.add_argument(
        "--settle",
        type=float,
        default=0.5,
        help="fraction of the run treated as start-up, left out of force statistics",
    )
    p.set_defaults(run=run_compare)

    p = subparsers.add_parser(
        "evaluate",
        help="roll a model out over a test set and tabulate its errors",
        description="Rollouts from each test trajectory's first frame; per-case and mean "
        "RMSE, force and Strouhal errors on shedding cases, divergence. With --from-json, the "
        "table and card of an evaluation saved elsewhere (say, on a GPU machine) instead.",
    )
    p.add_argument("--model", required=True, help="model name (assets/models/) or file path")
    p.add_argument("--testset", type=Path, help="folder of test trajectories")
    p.add_argument(
        "--from-json",
        type=Path,
        help="reuse the results an earlier `evaluate --json` saved for this model instead of "
        "rolling out (with --update-card: store them in the card)",
    )
    p.add_argument("--steps", type=int, default=600, help="compared steps per case (600)")
    p.add_argument(
        "--long-steps",
        type=int,
        default=0,
        help="also check each case stays finite this long (e.g. 2000; 0: skip)",
    )
    p.add_argument("--json", type=Path, help="write the full results here")
    p.add_argument(
        "--settle",
        type=float,
        default=0.5,
        help="fraction of each run treated as start-up, left out of force statistics",
    )
    p.add_argument(
        "--update-card", action="store_true", help="store the mean metrics in the model's card"
    )
    p.add_argument(
        "--card-key",
        help="with --update-card: store this set's metrics under this key of the card's metrics "
        "(e.g. envelope) instead of as its headline, leaving the card's settings as they are",
    )
    p.add_argument(
        "--no-projection",
        action="store_true",
        help="roll out the network's own steps, without the mass projection (docs/models.md)",
    )
    p.add_argument(
        "--projection-pressure",
        choices=("on", "off"),
        help="add the projection's pressure ρŪφ/dt to each step or not (default: the card's)",
    )
    p.add_argument("--device", help="cpu, cuda, … (default: CUDA if available)")
    p.set_defaults(run=run_evaluate)


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def run_compare(args: argparse.Namespace) -> int:
    from engine.data.trajectory import Trajectory
    from engine.evaluation.compare import compare
    from engine.training.distributed import pick_device

    simulator = None
    device = pick_device(args.device)
    if args.model:
        from engine.models.simulator import Simulator

        simulator = Simulator.load(args.model, device)
    result = compare(
        Trajectory.load(args.reference),
        Trajectory.load(args.prediction),
        simulator=simulator,
        device=device,
        settle_fraction=args.settle,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rel = result["rollout_rmse_relative"]
    print(f"{result['steps']} steps, {result['nodes']} nodes, Re {result['reynolds']:.4g}")
    print(
        f"rollout RMSE: velocity {100 * rel['velocity']:.3g} % of Ū, "
        f"pressure {100 * rel['p']:.3g} % of ρŪ²"
    )
    if "one_step_rmse_relative" in result:
        one = result["one_step_rmse_relative"]
        print(
            f"one-step RMSE: velocity {100 * one['velocity']:.3g} % of Ū, "
            f"pressure {100 * one['p']:.3g} % of ρŪ²"
        )
    for f in result["forces"]:
        ref, pred = f["reference"], f["prediction"]
        print(
            f"obstacle {f['obstacle']}: mean c_D {_fmt(ref['cd_mean'])} → "
            f"{_fmt(pred['cd_mean'])}, c_L amplitude {_fmt(ref['cl_amplitude'])} → "
            f"{_fmt(pred['cl_amplitude'])}, St {_fmt(ref['strouhal'])} → "
            f"{_fmt(pred['strouhal'])}"
        )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from engine.errors import ConfigError
    from engine.evaluation.evaluate import results_text

    if args.card_key is not None and not args.update_card:
        raise ConfigError("--card-key needs --update-card")
    if (args.testset is None) == (args.from_json is None):
        raise ConfigError("evaluate: give --testset to roll out, or --from-json to reuse results")
    if args.from_json is not None:
        if args.no_projection or args.projection_pressure is not None:
            raise ConfigError(
                "--from-json: the saved results already say how their steps were projected"
            )
        results = _saved_results(args.from_json, args.model)
    else:
        results = _roll_out(args)
    print(results_text(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.update_card:
        _store_in_card(args.model, results, args.card_key)
    return 0


def _roll_out(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate the model on the test set; the results as ``--json`` writes them."""
    from engine.evaluation.evaluate import evaluate
    from engine.models.simulator import Simulator
    from engine.training.distributed import pick_device

    device = pick_device(args.device)
    simulator = Simulator.load(args.model, device)
    simulator.project_steps = not args.no_projection
    if args.projection_pressure is not None:
        simulator.card.projection_pressure = args.projection_pressure == "on"
    cases: list[dict[str, Any]] = []
    mean: dict[str, Any] = {}
    for item in evaluate(
        simulator,
        args.testset,
        steps=args.steps,
        long_steps=args.long_steps,
        device=device,
        settle_fraction=args.settle,
    ):
        if "mean" in item:
            mean = item["mean"]
        else:
            cases.append(item)
            print(f"{item['case']}: done", file=sys.stderr)
    return {
        "model": simulator.card.name,
        "testset": str(args.testset),
        "steps": args.steps,
        "long_steps": args.long_steps,
        "mass_projection": simulator.project_steps,
        "projection_pressure": simulator.adds_projection_pressure,
        "device": str(device),
        "cases": cases,
        "mean": mean,
    }


# The keys `evaluate --json` writes that a card entry is made from.
_RESULT_KEYS = (
    "model",
    "testset",
    "steps",
    "long_steps",
    "mass_projection",
    "projection_pressure",
    "cases",
    "mean",
)


def _saved_results(path: Path, model: str) -> dict[str, Any]:
    """Results an earlier ``evaluate --json`` wrote, checked to be this model's."""
    from engine.errors import ConfigError
    from engine.models import zoo
    from engine.models.card import ModelCard

    try:
        results = json.loads(path.read_text())
        missing = [key for key in _RESULT_KEYS if key not in results]
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"--from-json {path}: not readable evaluation results ({exc})") from exc
    if missing:
        raise ConfigError(f"--from-json {path}: not `evaluate --json` results (no {missing[0]})")
    name = ModelCard.load(zoo.model_files(model)[1]).name
    if results["model"] != name:
        raise ConfigError(
            f"--from-json {path}: these results are {results['model']}'s, not {name}'s"
        )
    return results


def _store_in_card(model: str, results: dict[str, Any], card_key: str | None) -> None:
    """Store an evaluation's mean in the model's card: as its headline, which also sets the
    card's projection pressure to the measured one, or as a side measurement under a key."""
    from engine.models import zoo
    from engine.models.card import ModelCard

    card_path = zoo.model_files(model)[1]
    # Re-read: another evaluation of the same model may have stored its metrics meanwhile.
    card = ModelCard.load(card_path)
    cases = results["cases"]
    measured = {
        "testset": Path(results["testset"]).name,
        "steps": results["steps"],
        "long_steps": results["long_steps"],
        "mass_projection": results["mass_projection"],
        "projection_pressure": results["projection_pressure"],
        **results["mean"],
        "diverged_at": {c["case"]: c["diverged_at"] for c in cases if c["diverged_at"]},
    }
    if card_key:
        # A side measurement (another set, another setting) does not change what ships.
        card.metrics = {**card.metrics, card_key: measured}
    else:
        if results["mass_projection"]:  # unprojected steps say nothing about the pressure term
            card.projection_pressure = results["projection_pressure"]
        card.metrics = {**card.metrics, **measured}
    card.save(card_path)
