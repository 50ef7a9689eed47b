"""The static graph of a rollout: everything that stays constant while the flow evolves.

Built once per (mesh, scenario) by a chain of small transforms, each adding one group of fields
to a torch-geometric ``Data``; a model's :class:`GraphSpec` says which optional groups it needs.

Fields of a static graph (N nodes, E mesh edges both ways):

- ``pos`` [N, 2]: positions divided by the reference length L
- ``node_type`` [N]: :class:`~engine.nodetypes.NodeType` values
- ``node_attr`` [N, 9 + C (+ 4F)]: node-type one-hot, global conditions, Fourier features
- ``edge_index`` [2, E], ``edge_attr`` [E, 3]: mesh edges and (Δx, Δy, |Δ|) in units of L
- ``velocity_mask`` [N, 2]: 1 where the velocity component is computed, 0 where imposed
- ``inflow_index`` [K]: inflow nodes, whose velocity is set from the scenario after each step;
  ``inflow_profile`` [K, 2]: their fully ramped nondimensional velocity
- ``attn_edge_index`` (K-hop ∪ global-node edges) and ``dilated_edge_index``: when asked for
- scale factors ``length_scale`` (L), ``velocity_scale`` (Ū), ``pressure_scale`` (ρŪ²), the
  physical time step ``dt`` and the ``scenario`` itself
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform, Compose

from engine.boundary import inflow_velocity
from engine.geometry.mesh import TunnelMesh
from engine.graph import adjacency, features
from engine.nodetypes import NodeType
from engine.scenario import Scenario

StaticGraph = Data
"""A ``Data`` with the fields listed in this module's docstring."""


@dataclass(frozen=True)
class GraphSpec:
    """Which optional graph parts a model needs; stored in the model card.

    ``attention_hops`` > 0 adds ``attn_edge_index``: the union of A^1 … A^k with self-loops and,
    with ``global_nodes`` > 0, edges between a few inflow nodes and every node. ``dilation`` ≥ 2
    adds ``dilated_edge_index``: the ring of nodes exactly that many hops away.
    """

    fourier_frequencies: int = 0
    attention_hops: int = 0
    dilation: int = 0
    global_nodes: int = 0

    def __post_init__(self) -> None:
        if self.fourier_frequencies < 0 or self.attention_hops < 0 or self.global_nodes < 0:
            raise ValueError(f"graph spec counts must not be negative: {self}")
        if self.dilation not in (0,) and self.dilation < 2:
            raise ValueError(f"dilation must be 0 (off) or >= 2, got {self.dilation}")
        if self.global_nodes and not self.attention_hops:
            raise ValueError("global_nodes need attention edges: set attention_hops >= 1")


class Nondimensionalise(BaseTransform):
    """Scale positions by L and record the velocity and pressure scales for the simulator."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def forward(self, data: Data) -> Data:
        s = self.scenario
        data.length_scale = s.reference_length
        data.velocity_scale = s.inflow.mean_speed
        data.pressure_scale = s.fluid.density * s.inflow.mean_speed**2
        data.dt = s.time.dt
        data.scenario = s
        data.pos = (data.mesh_pos / s.reference_length).float()
        del data.mesh_pos
        return data


class AddMeshEdges(BaseTransform):
    """Both directions of every mesh edge, with relative position and length as features."""

    def forward(self, data: Data) -> Data:
        data.edge_index = adjacency.mesh_edge_index(data.cells)
        data.edge_attr = features.edge_features(data.pos, data.edge_index)
        del data.cells
        return data


class AddNodeAttributes(BaseTransform):
    """Node-type one-hot, the scenario's global conditions and optional Fourier features."""

    def __init__(self, scenario: Scenario, fourier_frequencies: int) -> None:
        self.scenario = scenario
        self.fourier_frequencies = fourier_frequencies

    def forward(self, data: Data) -> Data:
        n = data.node_type.shape[0]
        conditions = features.global_conditions(self.scenario).expand(n, -1)
        data.node_attr = torch.cat(
            [
                features.node_type_one_hot(data.node_type),
                conditions,
                features.fourier_features(data.pos, self.fourier_frequencies),
            ],
            dim=1,
        )
        return data


class AddBoundaryMasks(BaseTransform):
    """Which velocity components are computed, which nodes take the inflow, and its profile.

    ``inflow_profile`` is the fully ramped inflow (nondimensional); the inflow at time t is
    ``engine.boundary.ramp(scenario, t)`` times it, exactly as ``inflow_velocity`` computes it,
    so a rollout step needs no host round trip to impose it.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def forward(self, data: Data) -> Data:
        s = self.scenario
        data.velocity_mask = features.computed_velocity_mask(
            data.node_type, s.tunnel.walls == "slip"
        )
        data.inflow_index = torch.nonzero(data.node_type == NodeType.INFLOW).flatten()
        points = data.pos[data.inflow_index].double().numpy() * s.reference_length
        full = inflow_velocity(s, points, s.inflow.ramp_time) / s.inflow.mean_speed
        data.inflow_profile = torch.from_numpy(full).float()
        return data


class AddAttentionEdges(BaseTransform):
    """K-hop attention neighbourhoods, plus global inflow hubs linked to every node."""

    def __init__(self, hops: int, global_nodes: int) -> None:
        self.hops = hops
        self.global_nodes = global_nodes

    def forward(self, data: Data) -> Data:
        n = data.node_type.shape[0]
        edges = adjacency.khop_edge_index(data.edge_index, n, self.hops)
        if self.global_nodes:
            hubs = features.pick_global_nodes(data.pos, data.node_type, self.global_nodes)
            edges = adjacency.merge_edge_indices(n, edges, adjacency.global_edge_index(hubs, n))
        data.attn_edge_index = edges
        return data


class AddDilatedEdges(BaseTransform):
    """The ring of nodes exactly ``dilation`` hops away, for dilated attention heads."""

    def __init__(self, dilation: int) -> None:
        self.dilation = dilation

    def forward(self, data: Data) -> Data:
        n = data.node_type.shape[0]
        data.dilated_edge_index = adjacency.dilated_edge_index(data.edge_index, n, self.dilation)
        return data


def mesh_data(mesh: TunnelMesh) -> Data:
    """The raw mesh as a ``Data`` in physical units: the input of the transform chain."""
    return Data(
        mesh_pos=torch.from_numpy(np.asarray(mesh.points, dtype=np.float64)),
        cells=np.asarray(mesh.cells, dtype=np.int64),
        node_type=torch.from_numpy(np.asarray(mesh.node_type, dtype=np.int64)),
        num_nodes=mesh.num_nodes,
    )


def static_transforms(scenario: Scenario, spec: GraphSpec) -> Compose:
    """The transform chain that turns :func:`mesh_data` into a static graph for ``spec``."""
    chain: list[BaseTransform] = [
        Nondimensionalise(scenario),
        AddMeshEdges(),
        AddNodeAttributes(scenario, spec.fourier_frequencies),
        AddBoundaryMasks(scenario),
    ]
    if spec.attention_hops:
        chain.append(AddAttentionEdges(spec.attention_hops, spec.global_nodes))
    if spec.dilation:
        chain.append(AddDilatedEdges(spec.dilation))
    return Compose(chain)


def build_static_graph(mesh: TunnelMesh, scenario: Scenario, spec: GraphSpec) -> StaticGraph:
    """Mesh + scenario → the static graph a simulator steps on (on the CPU)."""
    return static_transforms(scenario, spec)(mesh_data(mesh))
