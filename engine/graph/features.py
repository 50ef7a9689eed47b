"""Node and edge features, in the nondimensional units the models are trained in.

Lengths are divided by the scenario's reference length L, velocities by the mean inflow speed Ū,
pressures by ρŪ², so one model serves a scenario in any units as long as its Reynolds number,
shape and nondimensional time step fall inside the training envelope.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.nodetypes import NUM_NODE_TYPES, NodeType
from engine.scenario import Scenario

GLOBAL_CONDITIONS: tuple[str, ...] = (
    "log10_re_minus_2",
    "parabolic_inflow",
    "slip_walls",
    "sin_inflow_angle",
    "log10_dt_nondim_plus_1",
)
"""Names of the per-scenario conditions broadcast to every node, in order.

They are shifted so the DFG cylinder at Re 100 with dt·Ū/L = 0.1 sits at zero, and are never
normalised by running statistics: a training set at a single Re would give them zero variance.
"""


def nondimensional_dt(scenario: Scenario) -> float:
    """The time step in convective units, dt·Ū/L: what a learned model actually steps by."""
    return scenario.time.dt * scenario.inflow.mean_speed / scenario.reference_length


def global_conditions(scenario: Scenario) -> torch.Tensor:
    """The scenario's conditions as a [len(GLOBAL_CONDITIONS)] float32 vector."""
    values = (
        math.log10(scenario.reynolds) - 2.0,
        1.0 if scenario.inflow.profile == "parabolic" else 0.0,
        1.0 if scenario.tunnel.walls == "slip" else 0.0,
        math.sin(math.radians(scenario.inflow.angle_deg)),
        math.log10(nondimensional_dt(scenario)) + 1.0,
    )
    return torch.tensor(values, dtype=torch.float32)


def node_type_one_hot(node_type: torch.Tensor) -> torch.Tensor:
    """[N] integer node types → [N, 9] float one-hot (MeshGraphNets' width)."""
    if node_type.numel() and (node_type.min() < 0 or node_type.max() >= NUM_NODE_TYPES):
        raise ValueError(f"node types must lie in [0, {NUM_NODE_TYPES}), got {node_type.unique()}")
    return torch.nn.functional.one_hot(node_type.long(), NUM_NODE_TYPES).float()


def fourier_features(pos: torch.Tensor, num_frequencies: int) -> torch.Tensor:
    """[N, 2] nondimensional positions → [N, 4F] sin/cos at periods 16, 8, 4, … reference lengths.

    The coarsest period spans a typical tunnel, the finest resolves boundary-layer scales.
    """
    if num_frequencies <= 0:
        return pos.new_zeros((pos.shape[0], 0))
    omega = 2.0 * math.pi * 2.0 ** torch.arange(num_frequencies, dtype=pos.dtype) / 16.0
    angles = (pos[:, :, None] * omega.to(pos.device)).reshape(pos.shape[0], -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def edge_features(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """[E, 3]: receiver − sender position (2) and its length (1), as in MeshGraphNets."""
    rel = pos.index_select(0, edge_index[1]) - pos.index_select(0, edge_index[0])
    return torch.cat([rel, rel.norm(dim=1, keepdim=True)], dim=1)


def computed_velocity_mask(node_type: torch.Tensor, slip_walls: bool) -> torch.Tensor:
    """[N, 2] float: 1 where the solver computes a velocity component, 0 where it is imposed.

    Fluid and outflow nodes are computed; on slip walls only the wall-normal component (v) is
    imposed, so u stays a prediction there.
    """
    mask = torch.zeros((node_type.shape[0], 2))
    free = (node_type == NodeType.NORMAL) | (node_type == NodeType.OUTFLOW)
    mask[free] = 1.0
    if slip_walls:
        mask[node_type == NodeType.WALL_BOUNDARY, 0] = 1.0
    return mask


def pick_global_nodes(pos: torch.Tensor, node_type: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` inflow nodes spread evenly along the inlet (by height): the global attention hubs.

    Inflow nodes carry the boundary condition, so letting every node attend to a few of them
    broadcasts the inflow state across the whole tunnel in one layer.
    """
    inflow = torch.nonzero(node_type == NodeType.INFLOW).flatten()
    if len(inflow) == 0:
        inflow = torch.arange(node_type.shape[0])
    order = inflow[torch.argsort(pos[inflow, 1], stable=True)]
    take = np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(np.int64)
    return order[torch.from_numpy(take)].unique()
