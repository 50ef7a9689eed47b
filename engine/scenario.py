"""The scenario: everything that defines one wind-tunnel run, as plain data round-tripping JSON.

The JSON layout is a contract relied on by the app, the data generator and outside tools: fields
may be added, never renamed or removed. Field checks happen here and name the offending field;
geometric checks (obstacles inside the tunnel and apart) need outlines and live in
``engine.geometry.validate``, which :meth:`Scenario.validate` calls.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from engine.errors import ScenarioError

Point = tuple[float, float]
WallType = Literal["no-slip", "slip"]
ProfileType = Literal["parabolic", "uniform"]


def _num(value: Any, name: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(name, f"expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ScenarioError(name, f"must be finite, got {value}")
    if positive and value <= 0:
        raise ScenarioError(name, f"must be positive, got {value:g}")
    if nonneg and value < 0:
        raise ScenarioError(name, f"must not be negative, got {value:g}")
    return value


def _point(value: Any, name: str) -> Point:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ScenarioError(name, f"expected [x, y], got {value!r}")
    return (_num(value[0], f"{name}[0]"), _num(value[1], f"{name}[1]"))


def _pair(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ScenarioError(name, f"expected two numbers, got {value!r}")
    return (
        _num(value[0], f"{name}[0]", positive=True),
        _num(value[1], f"{name}[1]", positive=True),
    )


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ScenarioError(name, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _only_keys(data: dict[str, Any], name: str, allowed: set[str]) -> None:
    if not isinstance(data, dict):
        raise ScenarioError(name, f"expected an object, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise ScenarioError(name, f"unknown field(s) {', '.join(sorted(unknown))}")


# --------------------------------------------------------------------------------------------
# Obstacles: one dataclass per shape class. ``reference_length`` is the length used for Re and
# force coefficients: the diameter for round bodies, the chord for airfoils, the largest side or
# extent otherwise (the DFG convention for the cylinder).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Circle:
    center: Point
    radius: float
    shape: ClassVar[str] = "circle"

    @property
    def reference_length(self) -> float:
        return 2.0 * self.radius


@dataclass(frozen=True)
class Ellipse:
    center: Point
    axes: tuple[float, float]  # semi-axes along the body's own x and y, before rotation
    angle_deg: float = 0.0
    shape: ClassVar[str] = "ellipse"

    @property
    def reference_length(self) -> float:
        return 2.0 * max(self.axes)


@dataclass(frozen=True)
class Rectangle:
    center: Point
    size: tuple[float, float]  # full width and height before rotation
    angle_deg: float = 0.0
    shape: ClassVar[str] = "rectangle"

    @property
    def reference_length(self) -> float:
        return max(self.size)


@dataclass(frozen=True)
class Naca:
    code: str  # NACA 4-digit code, e.g. "2412"
    chord: float
    center: Point  # position of the mid-chord point
    angle_deg: float = 0.0  # counter-clockwise like every angle: angle of attack α is -α here
    shape: ClassVar[str] = "naca"

    @property
    def reference_length(self) -> float:
        return self.chord


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    shape: ClassVar[str] = "polygon"

    @property
    def center(self) -> Point:
        xs, ys = zip(*self.points, strict=True)
        return (sum(xs) / len(xs), sum(ys) / len(ys))

    @property
    def reference_length(self) -> float:
        return max(math.dist(a, b) for a in self.points for b in self.points)


@dataclass(frozen=True)
class Blob:
    """A smooth random-looking body: r(θ) = radius·(1 + Σ a_k cos kθ + b_k sin kθ), k = 2, 3, …"""

    center: Point
    radius: float
    harmonics: tuple[tuple[float, float], ...] = ()
    angle_deg: float = 0.0
    shape: ClassVar[str] = "blob"

    @property
    def reference_length(self) -> float:
        bound = sum(abs(a) + abs(b) for a, b in self.harmonics)
        return 2.0 * self.radius * (1.0 + bound)


@dataclass(frozen=True)
class FileShape:
    """An outline read from a file (.dat airfoil, .stl/.obj/.ply section), scaled and rotated."""

    path: str
    center: Point
    scale: float = 1.0  # the outline is normalised to unit chord/extent, then multiplied by this
    angle_deg: float = 0.0
    shape: ClassVar[str] = "file"

    @property
    def reference_length(self) -> float:
        return self.scale


Obstacle = Circle | Ellipse | Rectangle | Naca | Polygon | Blob | FileShape
SHAPES: dict[str, type] = {
    cls.shape: cls for cls in (Circle, Ellipse, Rectangle, Naca, Polygon, Blob, FileShape)
}


def obstacle_from_dict(data: dict[str, Any], name: str = "obstacle") -> Obstacle:
    """Parse and check one obstacle object; every error names its field."""
    if not isinstance(data, dict):
        raise ScenarioError(name, f"expected an object, got {type(data).__name__}")
    shape = data.get("shape")
    if shape not in SHAPES:
        raise ScenarioError(
            f"{name}.shape", f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}"
        )
    cls = SHAPES[shape]
    _only_keys(data, name, {f.name for f in fields(cls)} | {"shape"})
    d = {k: v for k, v in data.items() if k != "shape"}
    try:
        if cls is Circle:
            return Circle(
                _point(d["center"], f"{name}.center"),
                _num(d["radius"], f"{name}.radius", positive=True),
            )
        if cls is Ellipse:
            return Ellipse(
                _point(d["center"], f"{name}.center"),
                _pair(d["axes"], f"{name}.axes"),
                _num(d.get("angle_deg", 0.0), f"{name}.angle_deg"),
            )
        if cls is Rectangle:
            return Rectangle(
                _point(d["center"], f"{name}.center"),
                _pair(d["size"], f"{name}.size"),
                _num(d.get("angle_deg", 0.0), f"{name}.angle_deg"),
            )
        if cls is Naca:
            code = d["code"]
            if not (isinstance(code, str) and len(code) == 4 and code.isdigit()):
                raise ScenarioError(f"{name}.code", f"expected a 4-digit NACA code, got {code!r}")
            if int(code[2:]) == 0:
                raise ScenarioError(f"{name}.code", "thickness (last two digits) must be > 0")
            if (code[0] == "0") != (code[1] == "0"):
                raise ScenarioError(
                    f"{name}.code", "camber and its position must both be zero or both non-zero"
                )
            return Naca(
                code,
                _num(d["chord"], f"{name}.chord", positive=True),
                _point(d["center"], f"{name}.center"),
                _num(d.get("angle_deg", 0.0), f"{name}.angle_deg"),
            )
        if cls is Polygon:
            pts = d["points"]
            if not isinstance(pts, (list, tuple)) or len(pts) < 3:
                raise ScenarioError(f"{name}.points", "a polygon needs at least 3 points")
            return Polygon(tuple(_point(p, f"{name}.points[{i}]") for i, p in enumerate(pts)))
        if cls is Blob:
            harm = d.get("harmonics", [])
            if not isinstance(harm, (list, tuple)):
                raise ScenarioError(f"{name}.harmonics", "expected a list of [a, b] pairs")
            parsed = tuple(
                (_num(h[0], f"{name}.harmonics[{i}][0]"), _num(h[1], f"{name}.harmonics[{i}][1]"))
                if isinstance(h, (list, tuple)) and len(h) == 2
                else _raise(ScenarioError(f"{name}.harmonics[{i}]", "expected [a, b]"))
                for i, h in enumerate(harm)
            )
            if sum(abs(a) + abs(b) for a, b in parsed) >= 0.9:
                raise ScenarioError(
                    f"{name}.harmonics", "amplitudes sum to ≥ 0.9: the outline would fold over"
                )
            return Blob(
                _point(d["center"], f"{name}.center"),
                _num(d["radius"], f"{name}.radius", positive=True),
                parsed,
                _num(d.get("angle_deg", 0.0), f"{name}.angle_deg"),
            )
        path = d["path"]
        if not isinstance(path, str) or not path:
            raise ScenarioError(f"{name}.path", f"expected a file path, got {path!r}")
        return FileShape(
            path,
            _point(d["center"], f"{name}.center"),
            _num(d.get("scale", 1.0), f"{name}.scale", positive=True),
            _num(d.get("angle_deg", 0.0), f"{name}.angle_deg"),
        )
    except KeyError as exc:
        raise ScenarioError(f"{name}.{exc.args[0]}", "missing required field") from None


def _raise(exc: Exception) -> Any:
    raise exc


def obstacle_to_dict(obstacle: Obstacle) -> dict[str, Any]:
    out: dict[str, Any] = {"shape": obstacle.shape}
    for key, value in asdict(obstacle).items():
        out[key] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# The other sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tunnel:
    length: float = 2.2
    height: float = 0.41
    walls: WallType = "no-slip"


@dataclass(frozen=True)
class Inflow:
    profile: ProfileType = "parabolic"
    mean_speed: float = 1.0  # mean over the inlet; a parabolic profile peaks at 1.5× this
    angle_deg: float = 0.0  # inflow direction; positive turns the flow towards +y
    ramp_time: float = 0.5  # seconds of smooth start-up from rest (0: impulsive start)


@dataclass(frozen=True)
class Fluid:
    viscosity: float = 1e-3  # kinematic viscosity ν [m²/s]
    density: float = 1.0  # ρ [kg/m³]; pressure is reported in Pa = ρ × kinematic pressure


@dataclass(frozen=True)
class MeshSpec:
    size: float = 0.02  # target element size in the far field
    obstacle_size: float = 0.006  # element size on obstacle surfaces
    wake_size: float | None = None  # element size in the wake region; default: mean of the two
    file: str | None = None  # use this 2D mesh (.msh/.vtu) as-is instead of meshing with gmsh


@dataclass(frozen=True)
class TimeSpec:
    dt: float = 0.01
    steps: int = 600


@dataclass(frozen=True)
class Scenario:
    tunnel: Tunnel = field(default_factory=Tunnel)
    obstacles: tuple[Obstacle, ...] = ()
    inflow: Inflow = field(default_factory=Inflow)
    fluid: Fluid = field(default_factory=Fluid)
    mesh: MeshSpec = field(default_factory=MeshSpec)
    time: TimeSpec = field(default_factory=TimeSpec)
    name: str = ""
    base_dir: Path | None = field(default=None, compare=False)  # resolves relative file paths

    # ---- derived quantities -----------------------------------------------------------------
    @property
    def reference_length(self) -> float:
        """Length for Re and force coefficients: the largest obstacle's, else the tunnel height."""
        if not self.obstacles:
            return self.tunnel.height
        return max(o.reference_length for o in self.obstacles)

    @property
    def reynolds(self) -> float:
        """Re = mean inflow speed × reference length / ν (the DFG 2D-2 preset gives 100)."""
        return self.inflow.mean_speed * self.reference_length / self.fluid.viscosity

    def resolve(self, path: str) -> Path:
        """A path from the scenario, made absolute against the scenario file's folder."""
        p = Path(path).expanduser()
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p

    # ---- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        mesh = {k: v for k, v in asdict(self.mesh).items() if v is not None}
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        out |= {
            "tunnel": asdict(self.tunnel),
            "obstacles": [obstacle_to_dict(o) for o in self.obstacles],
            "inflow": asdict(self.inflow),
            "fluid": asdict(self.fluid),
            "mesh": mesh,
            "time": asdict(self.time),
        }
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> Scenario:
        """Parse and check every field (not geometry: see :meth:`validate`)."""
        _only_keys(
            data, "scenario", {"name", "tunnel", "obstacles", "inflow", "fluid", "mesh", "time"}
        )
        t = data.get("tunnel", {})
        _only_keys(t, "tunnel", {"length", "height", "walls"})
        tunnel = Tunnel(
            _num(t.get("length", 2.2), "tunnel.length", positive=True),
            _num(t.get("height", 0.41), "tunnel.height", positive=True),
            _choice(t.get("walls", "no-slip"), "tunnel.walls", ("no-slip", "slip")),  # type: ignore[arg-type]
        )
        obs = data.get("obstacles", [])
        if not isinstance(obs, list):
            raise ScenarioError("obstacles", "expected a list of obstacles")
        obstacles = tuple(obstacle_from_dict(o, f"obstacles[{i}]") for i, o in enumerate(obs))
        i_ = data.get("inflow", {})
        _only_keys(i_, "inflow", {"profile", "mean_speed", "angle_deg", "ramp_time"})
        inflow = Inflow(
            _choice(i_.get("profile", "parabolic"), "inflow.profile", ("parabolic", "uniform")),  # type: ignore[arg-type]
            _num(i_.get("mean_speed", 1.0), "inflow.mean_speed", positive=True),
            _num(i_.get("angle_deg", 0.0), "inflow.angle_deg"),
            _num(i_.get("ramp_time", 0.5), "inflow.ramp_time", nonneg=True),
        )
        if abs(inflow.angle_deg) >= 45:
            raise ScenarioError("inflow.angle_deg", "must lie strictly between -45 and 45 degrees")
        f = data.get("fluid", {})
        _only_keys(f, "fluid", {"viscosity", "density"})
        fluid = Fluid(
            _num(f.get("viscosity", 1e-3), "fluid.viscosity", positive=True),
            _num(f.get("density", 1.0), "fluid.density", positive=True),
        )
        m = data.get("mesh", {})
        _only_keys(m, "mesh", {"size", "obstacle_size", "wake_size", "file"})
        mesh = MeshSpec(
            _num(m.get("size", 0.02), "mesh.size", positive=True),
            _num(m.get("obstacle_size", 0.006), "mesh.obstacle_size", positive=True),
            None
            if m.get("wake_size") is None
            else _num(m["wake_size"], "mesh.wake_size", positive=True),
            m.get("file"),
        )
        if mesh.file is not None and not isinstance(mesh.file, str):
            raise ScenarioError("mesh.file", f"expected a file path, got {mesh.file!r}")
        if mesh.obstacle_size > mesh.size:
            raise ScenarioError("mesh.obstacle_size", "must not exceed mesh.size")
        if mesh.size > min(tunnel.length, tunnel.height) / 4:
            raise ScenarioError(
                "mesh.size", "too coarse: needs at least 4 elements across the tunnel"
            )
        tm = data.get("time", {})
        _only_keys(tm, "time", {"dt", "steps"})
        steps = tm.get("steps", 600)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ScenarioError("time.steps", f"expected a positive whole number, got {steps!r}")
        time = TimeSpec(_num(tm.get("dt", 0.01), "time.dt", positive=True), steps)
        name = data.get("name", "")
        if not isinstance(name, str):
            raise ScenarioError("name", "expected text")
        return cls(tunnel, obstacles, inflow, fluid, mesh, time, name, base_dir)

    @classmethod
    def from_json(cls, text: str, base_dir: Path | None = None) -> Scenario:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError("scenario", f"not valid JSON ({exc})") from None
        return cls.from_dict(data, base_dir)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a scenario file; ``name`` defaults to the file's stem."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError("scenario", f"cannot read {path}: {exc.strerror}") from None
        scenario = cls.from_json(text, base_dir=path.resolve().parent)
        if not scenario.name:
            scenario = scenario.replace(name=path.stem)
        return scenario

    def replace(self, **changes: Any) -> Scenario:
        from dataclasses import replace

        return replace(self, **changes)

    def validate(self) -> Scenario:
        """Geometric checks (outlines inside the tunnel, apart, valid files); returns self."""
        from engine.geometry import validate_obstacles

        validate_obstacles(self)
        return self


def default_scenario() -> Scenario:
    """The built-in default: the DFG 2D-2 cylinder at Re 100 (assets/scenarios/dfg-2d-2.json)."""
    return Scenario(
        obstacles=(Circle((0.2, 0.2), 0.05),),
        name="dfg-2d-2",
    )
