"""The model card: the JSON half of a model file, from which a simulator rebuilds itself.

It records the architecture and its constructor arguments, the graph the model expects, the
training envelope (what scenarios the model has seen, so the app can warn outside it), evaluation
metrics and provenance. Normaliser statistics live with the weights in the safetensors file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from engine.errors import ModelError
from engine.geometry.mesh import TunnelMesh
from engine.graph.features import nondimensional_dt
from engine.scenario import Scenario

SCHEMA_VERSION = 1
Architecture = Literal["meshgraphnet", "graph_transformer", "physgto"]
ARCHITECTURES: tuple[str, ...] = ("meshgraphnet", "graph_transformer", "physgto")
Range = tuple[float, float]


def _range(values: Iterable[float]) -> Range | None:
    values = list(values)
    return (min(values), max(values)) if values else None


@dataclass
class TrainingEnvelope:
    """What the training data covered; ``None``/empty means "not recorded" (no warning)."""

    reynolds: Range | None = None
    shape_classes: tuple[str, ...] = ()
    nodes: Range | None = None
    dt_nondim: Range | None = None  # dt·Ū/L
    walls: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()

    @classmethod
    def covering(cls, cases: Iterable[tuple[Scenario, int]]) -> TrainingEnvelope:
        """The smallest envelope holding every (scenario, node count) of a training set."""
        cases = list(cases)
        scenarios = [s for s, _ in cases]
        return cls(
            reynolds=_range(s.reynolds for s in scenarios),
            shape_classes=tuple(sorted({o.shape for s in scenarios for o in s.obstacles})),
            nodes=_range(float(n) for _, n in cases),
            dt_nondim=_range(nondimensional_dt(s) for s in scenarios),
            walls=tuple(sorted({s.tunnel.walls for s in scenarios})),
            profiles=tuple(sorted({s.inflow.profile for s in scenarios})),
        )

    def warnings(self, scenario: Scenario, mesh: TunnelMesh) -> list[str]:
        """One plain-language line per way the scenario leaves this envelope."""
        out: list[str] = []

        def outside(name: str, value: float, rng: Range | None, fmt: str, slack: float) -> None:
            if rng is not None and not (rng[0] * (1 - slack) <= value <= rng[1] * (1 + slack)):
                out.append(
                    f"{name} {value:{fmt}} is outside the training range "
                    f"{rng[0]:{fmt}}–{rng[1]:{fmt}}"
                )

        outside("Reynolds number", scenario.reynolds, self.reynolds, ".4g", 0.01)
        outside(
            "nondimensional time step dt·Ū/L",
            nondimensional_dt(scenario),
            self.dt_nondim,
            ".4g",
            0.01,
        )
        outside("mesh size (nodes)", float(mesh.num_nodes), self.nodes, ".0f", 0.25)
        unseen = sorted({o.shape for o in scenario.obstacles} - set(self.shape_classes))
        if self.shape_classes and unseen:
            out.append(
                f"shape class(es) {', '.join(unseen)} not in the training data "
                f"({', '.join(self.shape_classes)})"
            )
        if self.walls and scenario.tunnel.walls not in self.walls:
            out.append(f"{scenario.tunnel.walls} walls were not in the training data")
        if self.profiles and scenario.inflow.profile not in self.profiles:
            out.append(f"{scenario.inflow.profile} inflow was not in the training data")
        return out


@dataclass
class ModelCard:
    """Everything about a model except its tensors. Fields may be added, never renamed."""

    name: str
    architecture: Architecture
    arguments: dict[str, Any]  # the network's constructor arguments, all of them
    graph: dict[str, int]  # engine.graph.static.GraphSpec as a dict
    envelope: TrainingEnvelope = field(default_factory=TrainingEnvelope)
    fields: tuple[str, ...] = ("u", "v", "p")
    metrics: dict[str, Any] = field(default_factory=dict)  # filled by evaluation
    data_hash: str = ""
    gpu_minutes: float = 0.0
    description: str = ""
    # Whether a projected step also adds the projection's pressure ρŪφ/dt (Simulator._advance).
    # Chosen per model by evaluation (`evaluate --projection-pressure on|off`): it helps some
    # weights and makes others diverge sooner (docs/models.md). Cards written before it existed
    # read as False.
    projection_pressure: bool = False
    schema_version: int = SCHEMA_VERSION

    def envelope_warnings(self, scenario: Scenario, mesh: TunnelMesh) -> list[str]:
        """Why this model's predictions for ``scenario`` on ``mesh`` may be unreliable."""
        return self.envelope.warnings(scenario, mesh)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model card") -> ModelCard:
        """Parse a card, rejecting newer schemas and unknown architectures with a clear error."""
        if not isinstance(data, dict):
            raise ModelError(f"{source}: expected a JSON object")
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ModelError(
                f"{source}: schema version {version!r} is newer than this Slipstream "
                f"understands ({SCHEMA_VERSION})"
            )
        missing = [k for k in ("name", "architecture", "arguments", "graph") if k not in data]
        if missing:
            raise ModelError(f"{source}: missing field(s) {', '.join(missing)}")
        if data["architecture"] not in ARCHITECTURES:
            raise ModelError(
                f"{source}: unknown architecture {data['architecture']!r}; expected "
                f"one of {', '.join(ARCHITECTURES)}"
            )
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}  # newer optional fields ignored
        env = kwargs.get("envelope") or {}
        env_known = {f.name for f in fields(TrainingEnvelope)}
        kwargs["envelope"] = TrainingEnvelope(
            **{
                k: (tuple(v) if isinstance(v, list) else v)
                for k, v in env.items()
                if k in env_known
            }
        )
        kwargs["fields"] = tuple(kwargs.get("fields", ("u", "v", "p")))
        return cls(**kwargs)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"model card {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path.name}: not valid JSON ({exc})") from None
        return cls.from_dict(data, path.name)
