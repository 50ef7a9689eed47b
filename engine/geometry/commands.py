"""``python -m engine mesh``: mesh a scenario headless; report quality and time; write the mesh."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.scenario import Scenario


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mesh",
        help="mesh a scenario's tunnel and write it (.vtu or .msh)",
        description="Mesh SCENARIO.json with gmsh, print node/cell counts, quality and time taken.",
    )
    parser.add_argument("scenario", type=Path, help="scenario JSON file")
    parser.add_argument(
        "-o", "--output", type=Path, help="write the mesh here (.vtu with node_type, or .msh)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.geometry.meshfile import write_mesh
    from engine.geometry.quality import mesh_quality
    from engine.geometry.tunnel import build_tunnel_mesh

    scenario = Scenario.load(args.scenario)
    start = time.perf_counter()
    mesh = build_tunnel_mesh(scenario)
    elapsed = time.perf_counter() - start
    print(f"{scenario.name}: Re {scenario.reynolds:.0f}, {len(scenario.obstacles)} obstacle(s)")
    print(mesh_quality(mesh))
    print(f"meshed in {elapsed:.3f} s")
    if args.output is not None:
        write_mesh(mesh, args.output)
        print(f"wrote {args.output}")
    return 0
