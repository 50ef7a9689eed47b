"""Plot a learned rollout against its ground truth (the figures in docs/models.md).

    python scripts/plot-rollout.py --model default --reference REF.h5 --steps 600 -o FIG.png

The model is rolled out from the reference's first frame on the reference's own mesh (as
``python -m engine evaluate`` does), then one figure shows the speed |u| of both at the last
step, their difference, and the cross-stream velocity v at a probe one obstacle-size behind the
first obstacle over time: the probe shows whether the wake sheds, at what amplitude and in
which phase, which a field snapshot alone cannot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on build machines
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.tri import Triangulation

from engine.data.trajectory import Trajectory
from engine.errors import DivergenceError
from engine.models.simulator import Simulator
from engine.nodetypes import NodeType
from engine.rollout.reference import trajectory_mesh, trajectory_scenario
from engine.rollout.rollout import rollout


def probe_node(reference: Trajectory) -> int:
    """The node nearest a point one obstacle-size behind the obstacles' surface nodes."""
    solid = reference.mesh_pos[reference.node_type == NodeType.OBSTACLE]
    low, high = solid.min(axis=0), solid.max(axis=0)
    target = np.array([high[0] + (high - low).max(), 0.5 * (low[1] + high[1])])
    return int(np.argmin(np.linalg.norm(reference.mesh_pos - target, axis=1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name (assets/models/) or path")
    parser.add_argument("--reference", type=Path, required=True, help="ground-truth trajectory")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()

    device = torch.device(args.device)
    simulator = Simulator.load(args.model).to(device).eval()
    reference = Trajectory.load(args.reference)
    scenario = trajectory_scenario(reference, args.reference.stem)
    mesh = trajectory_mesh(reference, scenario)
    steps = min(args.steps, reference.num_steps - 1)
    velocities = [reference.velocity[0]]
    try:
        for frame in rollout(
            simulator, scenario, steps, device, mesh=mesh, initial=reference.frame(0)
        ):
            if frame.step > 0:
                velocities.append(np.stack([frame.u, frame.v], axis=1))
    except DivergenceError as exc:
        print(f"the rollout diverged at step {exc.step}; plotting what came before")
    predicted = np.stack(velocities)
    last = len(predicted) - 1
    truth = reference.velocity[: last + 1]

    tri = Triangulation(reference.mesh_pos[:, 0], reference.mesh_pos[:, 1], reference.cells)
    speed_true = np.linalg.norm(truth[last], axis=1)
    speed_pred = np.linalg.norm(predicted[last], axis=1)
    vmax = float(max(speed_true.max(), speed_pred.max()))
    fig, axes = plt.subplots(4, 1, figsize=(11, 11), constrained_layout=True)
    for ax, values, title, cmap, limits in (
        (axes[0], speed_true, f"reference solver |u|, step {last}", "viridis", (0, vmax)),
        (axes[1], speed_pred, f"{simulator.card.name} |u|, step {last}", "viridis", (0, vmax)),
        (axes[2], speed_pred - speed_true, "difference", "RdBu_r", (-vmax / 2, vmax / 2)),
    ):
        shading = ax.tripcolor(tri, values, shading="gouraud", cmap=cmap, vmin=limits[0],
                               vmax=limits[1])  # fmt: skip
        ax.set_aspect("equal")
        ax.set_title(title)
        fig.colorbar(shading, ax=ax, shrink=0.8)
    node = probe_node(reference)
    time = reference.time[: last + 1]
    axes[3].plot(time, truth[:, node, 1], label="reference solver")
    axes[3].plot(time, predicted[:, node, 1], "--", label=simulator.card.name)
    axes[3].set_xlabel("time")
    axes[3].set_ylabel("v at the wake probe")
    axes[3].legend()
    fig.suptitle(f"{args.reference.stem}: {simulator.card.name} against the reference solver")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=90)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
