"""``python -m engine rollout SCENARIO.json --model M --steps N -o pred.h5``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DivergenceError
from engine.scenario import Scenario

if TYPE_CHECKING:
    from engine.frame import Frame
    from engine.geometry.mesh import TunnelMesh


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rollout",
        help="run a learned model through a scenario and save the trajectory",
        description="Roll a learned simulator forward from rest (or from a reference "
        "trajectory's first frame, on its mesh) and write the frames as a trajectory file.",
    )
    p.add_argument("scenario", type=Path, help="scenario JSON")
    p.add_argument("--model", required=True, help="model name (assets/models/) or file path")
    p.add_argument("--steps", type=int, help="number of steps (default: the scenario's)")
    p.add_argument("-o", "--output", type=Path, required=True, help="trajectory .h5 to write")
    p.add_argument("--device", help="cpu, cuda, … (default: CUDA if available)")
    p.add_argument(
        "--initial", type=Path, help="start from frame 0 of this trajectory, on its mesh"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.data.trajectory import Trajectory
    from engine.models.simulator import Simulator
    from engine.rollout.reference import trajectory_mesh
    from engine.rollout.rollout import rollout
    from engine.training.distributed import pick_device

    scenario = Scenario.load(args.scenario)
    device = pick_device(args.device)
    simulator = Simulator.load(args.model, device)
    mesh: TunnelMesh | None = None
    initial: Frame | None = None
    if args.initial is not None:
        reference = Trajectory.load(args.initial)
        mesh, initial = trajectory_mesh(reference, scenario), reference.frame(0)
    else:
        from engine.geometry import build_tunnel_mesh

        mesh = build_tunnel_mesh(scenario.validate())
    for warning in simulator.card.envelope_warnings(scenario, mesh):
        print(f"warning: {warning}", file=sys.stderr)
    steps = scenario.time.steps if args.steps is None else args.steps
    frames: list[Frame] = []
    start = time.perf_counter()
    attrs = {"model": simulator.card.name, "device": str(device)}
    try:
        for frame in tqdm(
            rollout(simulator, scenario, steps, device, mesh=mesh, initial=initial),
            total=steps + 1,
            unit="step",
            file=sys.stderr,
        ):
            frames.append(frame)
    except DivergenceError as exc:
        attrs["diverged_at"] = exc.step
        raise
    finally:
        attrs["wall_seconds"] = time.perf_counter() - start
        if frames:
            Trajectory.from_frames(mesh, frames, scenario.to_dict(), attrs).save(args.output)
    print(f"{len(frames) - 1} steps in {attrs['wall_seconds']:.1f} s → {args.output}")
    return 0
