"""The app's view of the engine's frame producers: the reference solver and learned models.

Qt-free. Engine pieces are imported lazily and their absence is reported as a reason string, so
the window can grey out a backend with a tooltip instead of failing at start-up while parts of the
engine are still missing from a build.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.state import REFERENCE_BACKEND, ModelChoice
from engine.errors import ModelError
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.scenario import Scenario

DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class ModelEntry:
    name: str  # what ModelChoice.backend holds for it: a name in assets/models or a path
    label: str  # what the user reads


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cuda", "mps" or "cpu"
    available: bool
    detail: str  # the GPU's name, or why it is not available


def missing_feature(module: str, attribute: str) -> str | None:
    """None when ``module.attribute`` can be imported, else a sentence saying what is missing."""
    try:
        getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        return f"not available in this build ({module}.{attribute} is missing: {exc})"
    return None


def shipped_models(places: tuple[str, ...] = ()) -> list[ModelEntry]:
    """Model pairs in assets/models (and ``places``), as the engine's zoo finds them."""
    reason = missing_feature("engine.models.zoo", "find_models")
    if reason:
        return []
    from engine.models.zoo import find_models

    entries = []
    for stem, card in find_models(places):
        label = stem.name if isinstance(card, Exception) else f"{card.name} ({card.architecture})"
        entries.append(ModelEntry(stem.name, label))
    return entries


def default_choice(device: str | None = None) -> ModelChoice:
    """The shipped default model when present and loadable, else the reference solver."""
    device = device or best_device()
    names = {m.name for m in shipped_models()}
    if DEFAULT_MODEL in names and missing_feature("engine.rollout.rollout", "rollout") is None:
        return ModelChoice(DEFAULT_MODEL, device)
    return ModelChoice(REFERENCE_BACKEND, device)


def devices() -> list[DeviceInfo]:
    import torch

    out = []
    if torch.cuda.is_available():
        out.append(DeviceInfo("cuda", True, torch.cuda.get_device_name(0)))
    else:
        out.append(DeviceInfo("cuda", False, "no CUDA device or a CPU-only torch build"))
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    out.append(DeviceInfo("mps", mps_ok, "Apple GPU" if mps_ok else "not an Apple-silicon Mac"))
    out.append(DeviceInfo("cpu", True, "always available"))
    return out


def best_device() -> str:
    return next(d.name for d in devices() if d.available)


@lru_cache(maxsize=4)
def _load_simulator(path: str, device: str) -> Any:
    from engine.models.simulator import Simulator

    simulator = Simulator.load(path, device)
    _warm_up(simulator, device)
    return simulator


def _warm_up(simulator: Any, device: str) -> None:
    """Two rollout steps on a tiny synthetic channel, here on the loader thread.

    A model's first step imports ~1,300 modules lazily (torch's symbolic shapes and sympy, most of
    torch_geometric) and sets up its kernels. Python imports hold the interpreter lock, so done
    at the first Run, in the run's worker thread, they froze the window for 0.3–0.5 s; here they
    happen while the model loads, before it can be run.
    """
    from engine.graph.synthetic import SYNTHETIC_SCENARIO, structured_channel_mesh
    from engine.rollout.rollout import rollout

    mesh = structured_channel_mesh(200)
    for _ in rollout(simulator, SYNTHETIC_SCENARIO, 2, device, mesh=mesh):
        pass


def load_simulator(choice: ModelChoice) -> Any:
    """The loaded model for a choice (cached, since loading a checkpoint takes a while)."""
    reason = missing_feature("engine.models.simulator", "Simulator")
    if reason:
        raise ModelError(f"learned models are {reason}")
    if not any(d.name == choice.device and d.available for d in devices()):
        raise ModelError(f"device {choice.device!r} is not available on this machine")
    return _load_simulator(choice.backend, choice.device)


def frame_source(
    choice: ModelChoice,
    scenario: Scenario,
    mesh: TunnelMesh,
    steps: int,
    cancel: threading.Event,
) -> Iterator[Frame]:
    """The generator of frames for one run with the chosen backend."""
    if choice.is_reference:
        reason = missing_feature("engine.solver", "solve")
        if reason:
            raise ModelError(f"the reference solver is {reason}")
        from engine.solver import solve

        return solve(scenario, mesh, steps=steps, cancel=cancel)
    reason = missing_feature("engine.rollout.rollout", "rollout")
    if reason:
        raise ModelError(f"learned rollouts are {reason}")
    from engine.rollout.rollout import rollout

    simulator = load_simulator(choice)
    return rollout(simulator, scenario, steps, choice.device, mesh=mesh, cancel=cancel.is_set)


def describe_card(card: Any) -> str:
    """The card's identity and training envelope in a few plain lines for the Model panel."""
    lines = [f"{card.name}: {card.architecture}"]
    if card.description:
        lines.append(card.description)
    env = card.envelope
    if env.reynolds:
        lines.append(f"trained on Re {env.reynolds[0]:.4g}–{env.reynolds[1]:.4g}")
    if env.nodes:
        lines.append(f"meshes of {env.nodes[0]:.0f}–{env.nodes[1]:.0f} nodes")
    if env.shape_classes:
        lines.append(f"shapes: {', '.join(env.shape_classes)}")
    if env.walls:
        lines.append(f"walls: {', '.join(env.walls)}; inflow: {', '.join(env.profiles) or 'any'}")
    return "\n".join(lines)
