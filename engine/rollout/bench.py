"""``bench rollout``: learned steps per second through the path the app's worker runs.

Why a benchmark of its own: ``bench models`` times the networks alone, but what a user waits for
is a whole :func:`engine.rollout.rollout` step — network, boundary values, mass projection (and
its pressure where the card asks), divergence check and surface forces. Issue 7 asks the default
for at least 20 of those per second at 2k nodes on a 2-core CPU; this measures exactly that on
the DFG cylinder scaled to the requested node count.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, replace

import torch

from engine.scenario import Scenario, default_scenario

TARGET_STEPS_PER_S = 20.0  # issue 7: the default at 2k nodes on a 2-core CPU


def scenario_with_nodes(target: int) -> Scenario:
    """The DFG cylinder with its element sizes scaled so the mesh has about ``target`` nodes."""
    from engine.geometry import build_tunnel_mesh

    base = default_scenario()
    probe = build_tunnel_mesh(base)
    factor = math.sqrt(probe.num_nodes / target)
    mesh = replace(
        base.mesh,
        size=min(base.mesh.size * factor, base.tunnel.height / 4),
        obstacle_size=min(base.mesh.obstacle_size * factor, base.mesh.size * factor),
    )
    return base.replace(mesh=mesh, name=f"bench-{target}")


@dataclass
class RolloutBenchRow:
    model: str
    nodes: int
    device: str
    threads: int
    steps: int
    steps_per_s: float
    # The first step also builds the graph, the projection's factorisation and the force
    # operators: what a run pays once before its steady rate. It is never among the timed steps.
    first_step_s: float
    mass_projection: bool
    projection_pressure: bool


def measure(
    model: str, nodes: int, device: str, steps: int, warmup: int, projection: bool
) -> RolloutBenchRow:
    """Time ``steps`` rollout steps after ``warmup`` (at least the first step; from rest on the
    scaled DFG cylinder)."""
    from engine.geometry import build_tunnel_mesh
    from engine.models.simulator import Simulator
    from engine.rollout.rollout import rollout

    scenario = scenario_with_nodes(nodes)
    mesh = build_tunnel_mesh(scenario)
    simulator = Simulator.load(model, device)
    simulator.project_steps = projection
    warmup = max(warmup, 1)
    run = rollout(simulator, scenario, warmup + steps, device, mesh=mesh)
    next(run)  # frame 0, the initial state: nothing computed yet
    start = time.perf_counter()
    next(run)
    first_step_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        next(run)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        next(run)  # each frame's fields are on the host: the step is complete
    seconds = time.perf_counter() - start
    return RolloutBenchRow(
        model=model,
        nodes=mesh.num_nodes,
        device=device,
        threads=torch.get_num_threads(),
        steps=steps,
        steps_per_s=steps / seconds,
        first_step_s=first_step_s,
        mass_projection=projection,
        projection_pressure=simulator.adds_projection_pressure,
    )


def register(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser(
        "rollout",
        help="learned rollout steps/s as the app runs them (projection and forces included)",
        description="Roll a model out from rest on the DFG cylinder scaled to each node count "
        "and report steps per second after a warm-up. The default model's target is "
        f"{TARGET_STEPS_PER_S:g} steps/s at 2k nodes on a 2-core CPU (--threads 2).",
    )
    p.add_argument("--model", default="default", help="model name or path (default)")
    p.add_argument("--nodes", type=int, nargs="+", default=[2000, 20000])
    p.add_argument("--steps", type=int, default=100, help="timed steps (100)")
    p.add_argument(
        "--warmup", type=int, default=5, help="untimed steps first, the first always (5)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-projection", action="store_true", help="time the network's own steps only")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import ConfigError

    if args.steps < 1 or args.warmup < 0:
        raise ConfigError("--steps must be at least 1 and --warmup at least 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    for nodes in args.nodes:
        row = measure(
            args.model, nodes, args.device, args.steps, args.warmup, not args.no_projection
        )
        if args.json:
            print(json.dumps(asdict(row)))
            continue
        verdict = ""
        if 1500 <= row.nodes <= 2500 and row.device == "cpu":
            met = "met" if row.steps_per_s >= TARGET_STEPS_PER_S else "MISSED"
            verdict = f"  (target ≥ {TARGET_STEPS_PER_S:g} at 2k nodes: {met})"
        print(
            f"{row.model} {row.nodes:>7} nodes  {row.device} × {row.threads} threads  "
            f"{row.steps_per_s:6.1f} steps/s  first step {row.first_step_s:.2f} s  "
            f"projection {'on' if row.mass_projection else 'off'}"
            f"{' + pressure' if row.projection_pressure else ''}{verdict}"
        )
    return 0
