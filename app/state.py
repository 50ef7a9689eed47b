"""What the window shows, as plain serialisable data: widgets bind to it, sessions save it.

Nothing here imports Qt (STYLE.md, napari/glue habits): each state object emits a small
:class:`Event` when a field changes, and the Qt widgets subscribe. Saving a session is writing
:class:`Session` as JSON; old session files stay loadable (tests keep one as a fixture).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.errors import ScenarioError
from engine.scenario import FileShape, Scenario, default_scenario

SESSION_VERSION = 1

# Field name -> (label for the colour bar, unit). "speed" is |u|.
FIELDS: dict[str, tuple[str, str]] = {
    "speed": ("speed |u|", "m/s"),
    "u": ("u", "m/s"),
    "v": ("v", "m/s"),
    "p": ("p", "Pa"),
    "vorticity": ("ω", "1/s"),
}
OVERLAYS = ("none", "streamlines", "glyphs")
REFERENCE_BACKEND = "reference"


class Event:
    """A list of callbacks called in order with the new value; the napari-style change signal."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []

    def connect(self, callback: Callable[..., None]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., None]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


def _from_known(cls: type, data: Any, section: str) -> Any:
    """Build dataclass ``cls`` from a dict, ignoring keys newer versions may add."""
    if not isinstance(data, dict):
        raise ScenarioError(section, f"expected an object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise ScenarioError(section, str(exc)) from None


@dataclass(frozen=True)
class ViewState:
    field: str = "speed"
    cmap: str = "viridis"
    auto_range: bool = True
    fixed_range: tuple[float, float] = (0.0, 1.5)
    show_edges: bool = False
    show_outlines: bool = True
    overlay: str = "none"

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"field must be one of {', '.join(FIELDS)}; got {self.field!r}")
        if self.overlay not in OVERLAYS:
            raise ValueError(f"overlay must be one of {', '.join(OVERLAYS)}; got {self.overlay!r}")
        lo, hi = self.fixed_range
        if not lo < hi:
            raise ValueError(f"fixed_range must be increasing, got {self.fixed_range}")
        object.__setattr__(self, "fixed_range", (float(lo), float(hi)))


@dataclass(frozen=True)
class ModelChoice:
    """Which backend produces frames: the reference solver, a shipped card's name, or a file."""

    backend: str = REFERENCE_BACKEND
    device: str = "cpu"

    @property
    def is_reference(self) -> bool:
        return self.backend == REFERENCE_BACKEND


@dataclass(frozen=True)
class RunSettings:
    steps: int = 600
    playback_rate: float = 0.0  # most steps per second to compute; 0 means as fast as possible

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive whole number, got {self.steps!r}")
        if self.playback_rate < 0:
            raise ValueError(f"playback_rate must not be negative, got {self.playback_rate}")


@dataclass
class Session:
    """Everything needed to reopen the window as it was: scenario, view, backend, probes."""

    scenario: Scenario = field(default_factory=default_scenario)
    view: ViewState = field(default_factory=ViewState)
    model: ModelChoice = field(default_factory=ModelChoice)
    run: RunSettings = field(default_factory=RunSettings)
    probes: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slipstream_session": SESSION_VERSION,
            "scenario": _absolute_paths(self.scenario).to_dict(),
            "view": asdict(self.view),
            "model": asdict(self.model),
            "run": asdict(self.run),
            "probes": [list(p) for p in self.probes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> Session:
        if not isinstance(data, dict) or "slipstream_session" not in data:
            raise ScenarioError("session", "not a Slipstream session file")
        version = data["slipstream_session"]
        if not isinstance(version, int) or version > SESSION_VERSION:
            raise ScenarioError(
                "session", f"version {version!r} is newer than this Slipstream reads"
            )
        view = dict(data.get("view", {}))
        if "fixed_range" in view:
            view["fixed_range"] = tuple(view["fixed_range"])
        probes = data.get("probes", [])
        if not isinstance(probes, list) or any(
            not isinstance(p, list) or len(p) != 2 for p in probes
        ):
            raise ScenarioError("probes", "expected a list of [x, y] points")
        return cls(
            scenario=Scenario.from_dict(data.get("scenario", {}), base_dir=base_dir),
            view=_from_known(ViewState, view, "view"),
            model=_from_known(ModelChoice, data.get("model", {}), "model"),
            run=_from_known(RunSettings, data.get("run", {}), "run"),
            probes=[(float(x), float(y)) for x, y in probes],
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Session:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ScenarioError("session", f"cannot read {path}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ScenarioError("session", f"{path.name} is not valid JSON ({exc})") from None
        return cls.from_dict(data, base_dir=path.resolve().parent)


def _absolute_paths(scenario: Scenario) -> Scenario:
    """File references made absolute, so a session saved elsewhere still finds its files."""
    obstacles = tuple(
        replace(o, path=str(scenario.resolve(o.path))) if isinstance(o, FileShape) else o
        for o in scenario.obstacles
    )
    mesh = scenario.mesh
    if mesh.file is not None:
        mesh = replace(mesh, file=str(scenario.resolve(mesh.file)))
    return scenario.replace(obstacles=obstacles, mesh=mesh)


class AppState:
    """The live session plus one change event per section; the single source the widgets read."""

    def __init__(self, session: Session | None = None) -> None:
        self.session = session or Session()
        self.scenario_changed = Event()
        self.view_changed = Event()
        self.model_changed = Event()
        self.run_changed = Event()
        self.probes_changed = Event()

    @property
    def scenario(self) -> Scenario:
        return self.session.scenario

    @property
    def view(self) -> ViewState:
        return self.session.view

    @property
    def model(self) -> ModelChoice:
        return self.session.model

    @property
    def run(self) -> RunSettings:
        return self.session.run

    @property
    def probes(self) -> list[tuple[float, float]]:
        return list(self.session.probes)

    def set_scenario(self, scenario: Scenario) -> None:
        if scenario != self.session.scenario or scenario.base_dir != self.scenario.base_dir:
            self.session.scenario = scenario
            self.scenario_changed.emit(scenario)

    def update_view(self, **changes: Any) -> None:
        view = replace(self.session.view, **changes)
        if view != self.session.view:
            self.session.view = view
            self.view_changed.emit(view)

    def set_model(self, model: ModelChoice) -> None:
        if model != self.session.model:
            self.session.model = model
            self.model_changed.emit(model)

    def update_run(self, **changes: Any) -> None:
        run = replace(self.session.run, **changes)
        if run != self.session.run:
            self.session.run = run
            self.run_changed.emit(run)

    def add_probe(self, x: float, y: float) -> None:
        self.session.probes.append((float(x), float(y)))
        self.probes_changed.emit(self.probes)

    def clear_probes(self) -> None:
        self.session.probes.clear()
        self.probes_changed.emit(self.probes)

    def load_session(self, session: Session) -> None:
        """Replace everything and tell every subscriber, as if each section had been edited."""
        self.session = session
        self.scenario_changed.emit(session.scenario)
        self.view_changed.emit(session.view)
        self.model_changed.emit(session.model)
        self.run_changed.emit(session.run)
        self.probes_changed.emit(self.probes)


class RecentFiles:
    """Most-recently-used scenario/session/geometry paths, kept in a small JSON file."""

    def __init__(self, path: Path | None = None, limit: int = 10) -> None:
        self.path = path or _config_dir() / "recent.json"
        self.limit = limit

    def list(self) -> list[str]:
        try:
            items = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return []
        return [p for p in items if isinstance(p, str)] if isinstance(items, list) else []

    def add(self, path: str | Path) -> None:
        entry = str(Path(path).resolve())
        items = [entry] + [p for p in self.list() if p != entry]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(items[: self.limit], indent=1))
        except OSError:
            pass  # a read-only home must not stop the user from opening files


def _config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "slipstream"
