"""The Simulator: one learned model as training, rollout, evaluation and the app all use it.

A simulator owns its network, its running normalisers and its featurisation, works in physical
units at its edges and in nondimensional normalised units inside, and rebuilds itself from a model
file (``NAME.safetensors`` weights + normaliser statistics, ``NAME.json`` card) without pickle.

Typical use::

    sim = Simulator.load("mgn-cylinder", device)
    static = sim.prepare(mesh, scenario, device)
    velocity, pressure = sim.step(static, velocity, pressure, time)

Training::

    batch = Batch.from_data_list([make_training_sample(static, v0, p0, v1, p1, 0.02), ...])
    loss = sim.loss(batch)  # or DDP(sim)(batch): forward() is the loss
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch_geometric.data import Batch, Data

from engine.boundary import ramp
from engine.errors import ModelError
from engine.geometry.mesh import TunnelMesh
from engine.graph.features import GLOBAL_CONDITIONS
from engine.graph.normalizer import Normalizer
from engine.graph.static import GraphSpec, StaticGraph, build_static_graph
from engine.models import zoo
from engine.models.card import ARCHITECTURES, Architecture, ModelCard
from engine.models.graph_transformer import GraphTransformer, graph_transformer_preset
from engine.models.meshgraphnet import MeshGraphNet
from engine.models.physgto import PhysGTO
from engine.models.projection import MassProjection
from engine.nodetypes import NUM_NODE_TYPES
from engine.scenario import Scenario

STATE_FIELDS = ("u", "v", "p")  # the state a network reads, nondimensional
TARGET_FIELDS = ("du", "dv", "p_next")  # what it predicts, normalised
EDGE_FEATURES = 3

DEFAULT_GRAPHS: dict[str, GraphSpec] = {
    "meshgraphnet": GraphSpec(),
    "graph_transformer": GraphSpec(attention_hops=1, dilation=2, global_nodes=4),
    "physgto": GraphSpec(fourier_frequencies=6),
}


@dataclass
class SimulatorConfig:
    """What to build. ``arguments`` are the network's constructor arguments other than its input
    and output widths (which follow from the graph spec); a graph transformer may give
    ``{"size": "small"}`` and override single arguments next to it."""

    architecture: Architecture = "meshgraphnet"
    arguments: dict[str, Any] = field(default_factory=dict)
    graph: GraphSpec | None = None  # None: the architecture's default (DEFAULT_GRAPHS)
    name: str = "model"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulatorConfig:
        """From a training config section, e.g. ``{"architecture": "physgto", "graph": {...}}``."""
        unknown = set(data) - {"architecture", "arguments", "graph", "name"}
        if unknown:
            raise ModelError(f"model config: unknown field(s) {', '.join(sorted(unknown))}")
        graph = data.get("graph")
        try:
            spec = GraphSpec(**graph) if graph is not None else None
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model config graph: {exc}") from None
        return cls(
            architecture=data.get("architecture", "meshgraphnet"),
            arguments=dict(data.get("arguments", {})),
            graph=spec,
            name=str(data.get("name", "model")),
        )


def _input_widths(spec: GraphSpec) -> tuple[int, int]:
    """(state width, static attribute width) of the node inputs for ``spec``."""
    return len(STATE_FIELDS), NUM_NODE_TYPES + len(GLOBAL_CONDITIONS) + 4 * spec.fourier_frequencies


def build_network(architecture: str, arguments: dict[str, Any]) -> nn.Module:
    """The bare network from its full constructor arguments (as stored in a card)."""
    classes = {
        "meshgraphnet": MeshGraphNet,
        "graph_transformer": GraphTransformer,
        "physgto": PhysGTO,
    }
    if architecture not in classes:
        raise ModelError(
            f"unknown architecture {architecture!r}; expected one of {', '.join(ARCHITECTURES)}"
        )
    try:
        return classes[architecture](**arguments)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{architecture} arguments {arguments}: {exc}") from None


def _full_arguments(cfg: SimulatorConfig, spec: GraphSpec) -> dict[str, Any]:
    state, attributes = _input_widths(spec)
    args = dict(cfg.arguments)
    if cfg.architecture == "graph_transformer" and "size" in args:
        try:
            args = {**graph_transformer_preset(args.pop("size")), **args}
        except ValueError as exc:
            raise ModelError(f"graph_transformer: {exc}") from None
    out = len(TARGET_FIELDS)
    if cfg.architecture == "meshgraphnet":
        return {"node_in": state + attributes, "edge_in": EDGE_FEATURES, "out": out, **args}
    if cfg.architecture == "graph_transformer":
        return {"node_in": state + attributes, "out": out, **args}
    return {"state_in": state, "attr_in": attributes, "edge_in": EDGE_FEATURES, "out": out, **args}


class Simulator(nn.Module):
    """A network plus normalisers and featurisation; see the module docstring for the workflow.

    ``accumulate_statistics``: while True and the module is in training mode, :meth:`loss`
    merges each batch into the running normalisers (they stop by themselves after 10⁶ batches).

    ``project_steps``: while True (the default), :meth:`prepare` attaches the mesh's
    :class:`MassProjection` and :meth:`step` projects every predicted change of velocity (and,
    where the card's ``projection_pressure`` says so, adds the projection's pressure). False
    gives the network's own steps, to measure the network alone (``evaluate --no-projection``).
    """

    def __init__(self, card: ModelCard) -> None:
        super().__init__()
        self.card = card
        try:
            self.graph_spec = GraphSpec(**card.graph)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model {card.name}: bad graph spec {card.graph}: {exc}") from None
        self.network = build_network(card.architecture, card.arguments)
        if isinstance(self.network, GraphTransformer):
            if not self.graph_spec.attention_hops:
                raise ModelError(
                    "a graph transformer needs attention edges: graph.attention_hops >= 1"
                )
            if self.network.uses_dilation and not self.graph_spec.dilation:
                raise ModelError(
                    "this graph transformer has dilated heads: set graph.dilation >= 2"
                )
        self.state_normalizer = Normalizer(len(STATE_FIELDS))
        self.edge_normalizer = Normalizer(EDGE_FEATURES)
        self.target_normalizer = Normalizer(len(TARGET_FIELDS))
        self.accumulate_statistics = True
        self.project_steps = True

    @property
    def adds_projection_pressure(self) -> bool:
        """Whether a step adds the projection's pressure: steps are projected and the card
        asks for it (what evaluations and benchmarks report as their setting)."""
        return self.project_steps and self.card.projection_pressure

    # ---- construction and files -----------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: SimulatorConfig) -> Simulator:
        if cfg.architecture not in ARCHITECTURES:
            raise ModelError(
                f"unknown architecture {cfg.architecture!r}; expected one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        spec = cfg.graph if cfg.graph is not None else DEFAULT_GRAPHS[cfg.architecture]
        card = ModelCard(
            name=cfg.name,
            architecture=cfg.architecture,
            arguments=_full_arguments(cfg, spec),
            graph=asdict(spec),
        )
        return cls(card)

    def save(self, path_stem: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.safetensors`` (weights and normaliser buffers) and ``<stem>.json``."""
        stem = Path(path_stem)
        if stem.suffix in (zoo.WEIGHTS_SUFFIX, zoo.CARD_SUFFIX):
            stem = stem.with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        weights = stem.with_suffix(zoo.WEIGHTS_SUFFIX)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(weights), metadata={"schema_version": str(self.card.schema_version)})
        return weights, self.card.save(stem.with_suffix(zoo.CARD_SUFFIX))

    @classmethod
    def load(cls, path_or_name: str | Path, device: torch.device | str = "cpu") -> Simulator:
        """Rebuild from a model file pair; a bare name resolves in ``assets/models/``."""
        weights, card_path = zoo.model_files(path_or_name)
        sim = cls(ModelCard.load(card_path))
        try:
            tensors = load_file(str(weights), device=str(torch.device(device)))
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"{weights.name}: not a readable safetensors file ({exc})") from None
        try:
            sim.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{weights.name} does not match its card: {exc}") from None
        return sim.to(device).eval()

    # ---- featurisation ---------------------------------------------------------------------
    def prepare(
        self, mesh: TunnelMesh, scenario: Scenario, device: torch.device | str = "cpu"
    ) -> StaticGraph:
        """Everything constant over a rollout, as a graph on ``device`` (engine.graph.static).

        With ``project_steps`` it carries the mesh's :class:`MassProjection` as ``projection``,
        which :meth:`step` applies to every predicted change of velocity.
        """
        static = build_static_graph(mesh, scenario, self.graph_spec).to(device)
        if self.project_steps:
            static.projection = MassProjection(mesh.points, mesh.cells, mesh.node_type, device)
        return static

    def predict(self, graph: Data, state: torch.Tensor) -> torch.Tensor:
        """Normalised (Δu, Δv, p_next) [N, 3] from the nondimensional state (u, v, p) [N, 3].

        ``graph`` is a static graph or a batch of them (training samples included).
        """
        if state.dim() != 2 or state.shape != (graph.num_nodes, len(STATE_FIELDS)):
            raise ValueError(
                f"state must have shape [{graph.num_nodes}, 3], got {list(state.shape)}"
            )
        x_state = self.state_normalizer(state)
        arch = self.card.architecture
        if arch == "meshgraphnet":
            out = self.network(
                torch.cat([x_state, graph.node_attr], dim=1),
                graph.edge_index,
                self.edge_normalizer(graph.edge_attr),
            )
        elif arch == "graph_transformer":
            out = self.network(
                torch.cat([x_state, graph.node_attr], dim=1),
                graph.pos,
                graph.attn_edge_index,
                graph.get("dilated_edge_index"),
            )
        else:
            batch = graph.batch if isinstance(graph, Batch) else None
            out = self.network(
                x_state,
                graph.node_attr,
                graph.edge_index,
                self.edge_normalizer(graph.edge_attr),
                batch,
            )
        return out.float()

    # ---- rollout -----------------------------------------------------------------------------
    def step(
        self, static: StaticGraph, velocity: torch.Tensor, pressure: torch.Tensor, time: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one time step (``static.dt``) in physical units.

        Args:
            static: from :meth:`prepare`.
            velocity: [N, 2] at ``time``; pressure: [N].

        Returns:
            (velocity [N, 2], pressure [N]) at ``time + dt``, float32, with boundary values
            imposed: the inflow profile at the new time, zero on obstacles and no-slip walls,
            zero normal velocity on slip walls.
        """
        return self.step_many(static, [static], [velocity], [pressure], [time])[0]

    def step_many(
        self,
        graph: Data,
        statics: list[StaticGraph],
        velocities: list[torch.Tensor],
        pressures: list[torch.Tensor],
        times: list[float],
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`step` for several independent flows with one network call.

        Why: pushforward training advances each sample of a batch on its own; on a GPU one
        small graph per call is all kernel launches, so the graphs go through the network
        together. ``graph`` is ``statics`` collated by :func:`collate_statics` (or the single
        static itself); boundary values and the mass projection are applied per flow.
        """
        states = []
        for static, velocity, pressure in zip(statics, velocities, pressures, strict=True):
            n = static.num_nodes
            if velocity.shape != (n, 2) or pressure.shape != (n,):
                raise ValueError(
                    f"velocity must be [{n}, 2] and pressure [{n}], got "
                    f"{list(velocity.shape)} and {list(pressure.shape)}"
                )
            u_scale, p_scale = static.velocity_scale, static.pressure_scale
            states.append(
                torch.cat([velocity.float() / u_scale, pressure.float()[:, None] / p_scale], dim=1)
            )
        state = states[0] if len(states) == 1 else torch.cat(states)
        deltas = self.target_normalizer.inverse(self.predict(graph, state))
        sizes = [s.num_nodes for s in statics]
        return [
            self._advance(static, state, delta, time)
            for static, state, delta, time in zip(
                statics, states, deltas.split(sizes), times, strict=True
            )
        ]

    def _advance(
        self, static: StaticGraph, state: torch.Tensor, delta: torch.Tensor, time: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The next physical (velocity, pressure) of one flow from its predicted change."""
        velocity_next = state[:, :2] + delta[:, :2]
        imposed = torch.zeros_like(velocity_next)
        imposed[static.inflow_index] = (
            ramp(static.scenario, time + static.dt) * static.inflow_profile
        )
        mask = static.velocity_mask
        velocity_next = velocity_next * mask + imposed * (1.0 - mask)
        pressure_next = delta[:, 2]
        projection = static.get("projection")
        if projection is not None:  # the flow rate is global; the network's view is not
            # Project the step's change, not the new field: a state read from another
            # discretisation (the solver's P2 data) keeps its own small P1 divergence instead of
            # being altered, and the change still carries the inflow's new flow rate inwards.
            current = state[:, :2]
            change, potential = projection(velocity_next - current)
            velocity_next = current + change
            velocity_next = velocity_next * mask + imposed * (1.0 - mask)
            if self.card.projection_pressure:
                # The removed gradient is a pressure's (Chorin: u = u* - (dt/ρ)∇p, so
                # p = ρφ/dt; nondimensional here, and φ's lengths are metres, hence dt·Ū).
                # Without it the next step reads a pressure that disagrees with its velocity.
                pressure_next = pressure_next + potential / (static.dt * static.velocity_scale)
        return velocity_next * static.velocity_scale, pressure_next * static.pressure_scale

    # ---- training ----------------------------------------------------------------------------
    def forward(self, batch: Data) -> torch.Tensor:
        """The one-step training loss of ``batch`` (see :meth:`loss`); a forward, so DDP works."""
        target_mask = batch.target_mask
        if self.training and self.accumulate_statistics:
            self.state_normalizer.accumulate(batch.state)
            self.edge_normalizer.accumulate(batch.edge_attr)
            self.target_normalizer.accumulate(batch.target[target_mask[:, 0] > 0])
        prediction = self.predict(batch, batch.state)
        error = (prediction - self.target_normalizer(batch.target)) ** 2 * target_mask
        return error.sum() / target_mask.sum().clamp_min(1.0)

    def loss(self, batch: Data) -> torch.Tensor:
        """Mean squared error of the normalised (Δu, Δv, p_next) over computed values.

        ``batch``: one :func:`make_training_sample` or a ``Batch`` of them (any sizes). Velocity
        is scored where the solver computes it (fluid and outflow nodes, u on slip walls);
        pressure everywhere, since no boundary imposes it and forces are read from it on the
        obstacle surface.
        """
        return self(batch)


def _as_tensor(x: np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=like.device)


def _batchable(static: StaticGraph) -> Data:
    """A shallow copy (sharing the tensors) without the projection, which is a per-mesh rollout
    tool and not a tensor PyG could batch."""
    graph = copy.copy(static)
    if "projection" in graph:
        del graph.projection
    return graph


def collate_statics(statics: list[StaticGraph]) -> Batch:
    """Static graphs of several flows as one batch, for :meth:`Simulator.step_many`."""
    return Batch.from_data_list([_batchable(s) for s in statics])


def make_training_sample(
    static: StaticGraph,
    velocity_t: np.ndarray | torch.Tensor,
    pressure_t: np.ndarray | torch.Tensor,
    velocity_t1: np.ndarray | torch.Tensor,
    pressure_t1: np.ndarray | torch.Tensor,
    noise_std: float,
) -> Data:
    """One training pair (physical units) → a graph with noisy input ``state`` and ``target``.

    ``noise_std`` is in units of the mean inflow speed (0.02 = 2 % of Ū, MeshGraphNets' value
    for cylinder flow) and applies to computed velocity components and to pressure (in units of
    ρŪ²). The velocity target is measured from the *noisy* input, so the model learns to pull a
    drifted state back, which is what keeps long rollouts stable.

    Fields added to the static graph's: ``state`` [N, 3] (u, v, p nondimensional),
    ``target`` [N, 3] (Δu, Δv, p_next nondimensional, not yet normalised) and
    ``target_mask`` [N, 3].
    """
    like = static.pos
    n = static.num_nodes
    u_scale, p_scale = static.velocity_scale, static.pressure_scale
    v0, v1 = _as_tensor(velocity_t, like) / u_scale, _as_tensor(velocity_t1, like) / u_scale
    p0, p1 = _as_tensor(pressure_t, like) / p_scale, _as_tensor(pressure_t1, like) / p_scale
    if v0.shape != (n, 2) or v1.shape != (n, 2) or p0.shape != (n,) or p1.shape != (n,):
        raise ValueError(f"velocities must be [{n}, 2] and pressures [{n}]")
    mask = static.velocity_mask
    if noise_std > 0:
        v0 = v0 + noise_std * torch.randn_like(v0) * mask
        p0 = p0 + noise_std * torch.randn_like(p0)
    sample = _batchable(static)
    sample.state = torch.cat([v0, p0[:, None]], dim=1)
    sample.target = torch.cat([v1 - v0, p1[:, None]], dim=1)
    sample.target_mask = torch.cat([mask, torch.ones_like(p1)[:, None]], dim=1)
    return sample
