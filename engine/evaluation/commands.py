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
        "RMSE, force and Strouhal errors on shedding cases, divergence.",
    )
    p.add_argument("--model", required=True, help="model name (assets/models/) or file path")
    p.add_argument("--testset", type=Path, required=True, help="folder of test trajectories")
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
    from engine.evaluation.evaluate import evaluate, markdown_table
    from engine.models import zoo
    from engine.models.card import ModelCard
    from engine.models.simulator import Simulator
    from engine.training.distributed import pick_device

    if args.card_key is not None and not args.update_card:
        raise ConfigError("--card-key needs --update-card")
    device = pick_device(args.device)
    simulator = Simulator.load(args.model, device)
    simulator.project_steps = not args.no_projection
    if args.projection_pressure is not None:
        simulator.card.projection_pressure = args.projection_pressure == "on"
    pressure_term = simulator.adds_projection_pressure
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
    print(markdown_table(cases, mean))
    results = {
        "model": simulator.card.name,
        "testset": str(args.testset),
        "steps": args.steps,
        "long_steps": args.long_steps,
        "mass_projection": simulator.project_steps,
        "projection_pressure": pressure_term,
        "device": str(device),
        "cases": cases,
        "mean": mean,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.update_card:
        card_path = zoo.model_files(args.model)[1]
        # Re-read: another evaluation of the same model may have stored its metrics meanwhile.
        card = ModelCard.load(card_path)
        measured = {
            "testset": args.testset.name,
            "steps": args.steps,
            "long_steps": args.long_steps,
            "mass_projection": simulator.project_steps,
            "projection_pressure": pressure_term,
            **mean,
            "diverged_at": {c["case"]: c["diverged_at"] for c in cases if c["diverged_at"]},
        }
        if args.card_key:
            # A side measurement (another set, another setting) does not change what ships.
            card.metrics = {**card.metrics, args.card_key: measured}
        else:
            card.projection_pressure = simulator.card.projection_pressure
            card.metrics = {**card.metrics, **measured}
        card.save(card_path)
    return 0
