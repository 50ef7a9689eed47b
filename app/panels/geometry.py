"""Geometry: obstacles (add, remove, move, rotate, resize), shape files, tunnel and mesh size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.panels.widgets import NumberBox
from app.state import AppState
from engine.errors import ScenarioError
from engine.scenario import (
    Blob,
    Circle,
    Ellipse,
    FileShape,
    Naca,
    Obstacle,
    Polygon,
    Rectangle,
    Scenario,
    Tunnel,
)

SHAPE_FILE_SUFFIXES = (".dat", ".txt", ".stl", ".obj", ".ply")
MESH_FILE_SUFFIXES = (".msh", ".vtu")
PRESET_SHAPES = ("circle", "ellipse", "rectangle", "naca", "blob")


def new_obstacle(shape: str, scenario: Scenario) -> Obstacle:
    """A preset shape sized to the tunnel, placed upstream of (and beside) existing obstacles."""
    length, height = scenario.tunnel.length, scenario.tunnel.height
    size = 0.2 * height
    x = min(0.2 * length + 0.15 * length * len(scenario.obstacles), 0.8 * length)
    center = (x, 0.5 * height)
    if shape == "circle":
        return Circle(center, 0.5 * size)
    if shape == "ellipse":
        return Ellipse(center, (0.6 * size, 0.25 * size))
    if shape == "rectangle":
        return Rectangle(center, (size, 0.5 * size))
    if shape == "naca":
        return Naca("0012", 2.0 * size, center)
    if shape == "blob":
        return Blob(center, 0.5 * size, ((0.1, 0.05), (0.05, -0.03)))
    raise ValueError(f"unknown preset shape {shape!r}")


def moved(obstacle: Obstacle, center: tuple[float, float]) -> Obstacle:
    """``obstacle`` translated so that its centre is ``center`` (polygons move every vertex)."""
    if isinstance(obstacle, Polygon):
        cx, cy = obstacle.center
        dx, dy = center[0] - cx, center[1] - cy
        return Polygon(tuple((x + dx, y + dy) for x, y in obstacle.points))
    return replace(obstacle, center=center)


@dataclass(frozen=True)
class Parameter:
    """One numeric property of an obstacle: how to read it and how to make a changed copy."""

    label: str
    get: Callable[[Obstacle], float]
    set: Callable[[Obstacle, float], Obstacle]
    minimum: float = 1e-6
    step: float = 0.005


def parameters(obstacle: Obstacle) -> list[Parameter]:
    """The editable numbers of ``obstacle``: position, rotation and size."""
    span = 1e4
    out = [
        Parameter(
            "Centre x [m]",
            lambda o: o.center[0],
            lambda o, v: moved(o, (v, o.center[1])),
            -span,
            0.01,
        ),
        Parameter(
            "Centre y [m]",
            lambda o: o.center[1],
            lambda o, v: moved(o, (o.center[0], v)),
            -span,
            0.01,
        ),
    ]
    if hasattr(obstacle, "angle_deg"):
        out.append(
            Parameter(
                "Angle [°]",
                lambda o: o.angle_deg,
                lambda o, v: replace(o, angle_deg=v),
                -360.0,
                1.0,
            )
        )
    if isinstance(obstacle, (Circle, Blob)):
        out.append(Parameter("Radius [m]", lambda o: o.radius, lambda o, v: replace(o, radius=v)))
    elif isinstance(obstacle, Ellipse):
        out += [
            Parameter(
                "Semi-axis a [m]", lambda o: o.axes[0], lambda o, v: replace(o, axes=(v, o.axes[1]))
            ),
            Parameter(
                "Semi-axis b [m]", lambda o: o.axes[1], lambda o, v: replace(o, axes=(o.axes[0], v))
            ),
        ]
    elif isinstance(obstacle, Rectangle):
        out += [
            Parameter(
                "Width [m]", lambda o: o.size[0], lambda o, v: replace(o, size=(v, o.size[1]))
            ),
            Parameter(
                "Height [m]", lambda o: o.size[1], lambda o, v: replace(o, size=(o.size[0], v))
            ),
        ]
    elif isinstance(obstacle, Naca):
        out.append(Parameter("Chord [m]", lambda o: o.chord, lambda o, v: replace(o, chord=v)))
    elif isinstance(obstacle, FileShape):
        out.append(Parameter("Scale [m]", lambda o: o.scale, lambda o, v: replace(o, scale=v)))
    return out


def describe(index: int, obstacle: Obstacle) -> str:
    name = obstacle.shape
    if isinstance(obstacle, Naca):
        name = f"NACA {obstacle.code}"
    elif isinstance(obstacle, FileShape):
        name = Path(obstacle.path).name
    x, y = obstacle.center
    return f"{index + 1}. {name} at ({x:.3g}, {y:.3g})"


def checked(scenario: Scenario) -> Scenario:
    """Run the scenario's field checks (raising ScenarioError) by a JSON round trip."""
    return Scenario.from_dict(scenario.to_dict(), base_dir=scenario.base_dir)


class GeometryPanel(QWidget):
    """Edits ``scenario.obstacles``, ``tunnel`` and ``mesh``; field errors show in the panel."""

    open_geometry_requested = Signal()
    remesh_requested = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.obstacles = QListWidget()
        self.obstacles.setObjectName("obstacles")
        self.obstacles.currentRowChanged.connect(self._show_parameters)

        add = QPushButton("Add")
        menu = QMenu(add)
        for shape in PRESET_SHAPES:
            menu.addAction(shape.capitalize(), lambda s=shape: self.add_obstacle(s))
        add.setMenu(menu)
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self.remove_selected)
        open_file = QPushButton("Open geometry…")
        open_file.setToolTip(
            "airfoil .dat, a surface .stl/.obj/.ply (cut at z = 0), a 2D .msh/.vtu"
        )
        open_file.clicked.connect(self.open_geometry_requested)
        buttons = QHBoxLayout()
        for b in (add, self.remove, open_file):
            buttons.addWidget(b)

        self.params_box = QGroupBox("Selected obstacle")
        self.params = QFormLayout(self.params_box)
        self._params_key: tuple[int, str] | None = None
        self._param_boxes: list[tuple[NumberBox, Parameter]] = []
        self._code: QLineEdit | None = None

        tunnel_box = QGroupBox("Tunnel")
        tunnel_form = QFormLayout(tunnel_box)
        self.length = NumberBox(2.2, 0.01, 1e4, 0.1, "tunnel length [m]")
        self.height = NumberBox(0.41, 0.01, 1e4, 0.05, "tunnel height [m]")
        self.walls = QComboBox()
        self.walls.addItems(["no-slip", "slip"])
        self.walls.setToolTip("no-slip: a closed channel; slip: free-stream sides")
        tunnel_form.addRow("Length [m]", self.length)
        tunnel_form.addRow("Height [m]", self.height)
        tunnel_form.addRow("Walls", self.walls)

        mesh_box = QGroupBox("Mesh")
        mesh_form = QFormLayout(mesh_box)
        self.mesh_size = NumberBox(0.02, 1e-5, 100.0, 0.005, "element size far from obstacles [m]")
        self.obstacle_size = NumberBox(0.006, 1e-5, 100.0, 0.001, "element size on obstacles [m]")
        self.mesh_file = QLabel("generated by gmsh")
        self.mesh_file.setWordWrap(True)
        self.clear_mesh_file = QPushButton("Use gmsh")
        self.clear_mesh_file.setToolTip("stop using the loaded mesh file and mesh the tunnel")
        self.clear_mesh_file.clicked.connect(self._clear_mesh_file)
        self.mesh_info = QLabel("")
        self.mesh_info.setObjectName("mesh_info")
        self.mesh_info.setWordWrap(True)
        remesh = QPushButton("Mesh now")
        remesh.clicked.connect(self.remesh_requested)
        mesh_form.addRow("Far-field size [m]", self.mesh_size)
        mesh_form.addRow("Obstacle size [m]", self.obstacle_size)
        mesh_form.addRow("Source", self.mesh_file)
        mesh_form.addRow(self.clear_mesh_file, remesh)
        mesh_form.addRow(self.mesh_info)

        self.error = QLabel("")
        self.error.setObjectName("geometry_error")
        self.error.setStyleSheet("color: #d32f2f")
        self.error.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.obstacles)
        layout.addLayout(buttons)
        layout.addWidget(self.params_box)
        layout.addWidget(tunnel_box)
        layout.addWidget(mesh_box)
        layout.addWidget(self.error)
        layout.addStretch(1)

        for box in (self.length, self.height, self.mesh_size, self.obstacle_size):
            box.valueChanged.connect(self._commit_tunnel_and_mesh)
        self.walls.currentTextChanged.connect(self._commit_tunnel_and_mesh)
        state.scenario_changed.connect(self.refresh)
        self.refresh(state.scenario)

    # ---- state -> widgets -----------------------------------------------------------------------
    def refresh(self, scenario: Scenario) -> None:
        row = self.obstacles.currentRow()
        self.obstacles.blockSignals(True)
        self.obstacles.clear()
        for i, obstacle in enumerate(scenario.obstacles):
            self.obstacles.addItem(describe(i, obstacle))
        row = min(max(row, 0), len(scenario.obstacles) - 1)
        self.obstacles.setCurrentRow(row)
        self.obstacles.blockSignals(False)
        self.remove.setEnabled(bool(scenario.obstacles))
        self.length.set_quietly(scenario.tunnel.length)
        self.height.set_quietly(scenario.tunnel.height)
        self.walls.blockSignals(True)
        self.walls.setCurrentText(scenario.tunnel.walls)
        self.walls.blockSignals(False)
        self.mesh_size.set_quietly(scenario.mesh.size)
        self.obstacle_size.set_quietly(scenario.mesh.obstacle_size)
        self.mesh_file.setText(scenario.mesh.file or "generated by gmsh")
        self.clear_mesh_file.setEnabled(scenario.mesh.file is not None)
        self._show_parameters(row)

    def _show_parameters(self, row: int) -> None:
        """Rebuild the parameter rows when the selection or its shape changed, else refresh them
        quietly (rebuilding would delete the very spin box whose signal is being handled)."""
        obstacles = self.state.scenario.obstacles
        valid = 0 <= row < len(obstacles)
        self.params_box.setEnabled(valid)
        key = (row, obstacles[row].shape) if valid else None
        if key == self._params_key and valid:
            obstacle = obstacles[row]
            for box, param in self._param_boxes:
                box.set_quietly(param.get(obstacle))
            if self._code is not None and isinstance(obstacle, Naca):
                self._code.setText(obstacle.code)
            return
        self._params_key = key
        self._param_boxes, self._code = [], None
        while self.params.rowCount():
            self.params.removeRow(0)
        if not valid:
            return
        obstacle = obstacles[row]
        for param in parameters(obstacle):
            box = NumberBox(param.get(obstacle), param.minimum, 1e4, param.step, param.label)
            box.valueChanged.connect(
                lambda v, p=param: self._edit(row, p.set(self.state.scenario.obstacles[row], v))
            )
            self.params.addRow(param.label, box)
            self._param_boxes.append((box, param))
        if isinstance(obstacle, Naca):
            self._code = QLineEdit(obstacle.code)
            self._code.setInputMask("9999")
            self._code.editingFinished.connect(
                lambda: self._edit(
                    row, replace(self.state.scenario.obstacles[row], code=self._code.text())
                )
            )
            self.params.addRow("NACA code", self._code)
        if isinstance(obstacle, FileShape):
            self.params.addRow("File", QLabel(Path(obstacle.path).name))

    # ---- widgets -> state -----------------------------------------------------------------------
    def add_obstacle(self, shape: str) -> None:
        scenario = self.state.scenario
        self.apply(scenario.replace(obstacles=(*scenario.obstacles, new_obstacle(shape, scenario))))
        self.obstacles.setCurrentRow(len(self.state.scenario.obstacles) - 1)

    def remove_selected(self) -> None:
        row = self.obstacles.currentRow()
        obstacles = list(self.state.scenario.obstacles)
        if 0 <= row < len(obstacles):
            del obstacles[row]
            self.apply(self.state.scenario.replace(obstacles=tuple(obstacles)))

    def _edit(self, row: int, obstacle: Obstacle) -> None:
        obstacles = list(self.state.scenario.obstacles)
        obstacles[row] = obstacle
        self.apply(self.state.scenario.replace(obstacles=tuple(obstacles)))

    def _commit_tunnel_and_mesh(self) -> None:
        scenario = self.state.scenario
        tunnel = Tunnel(self.length.value(), self.height.value(), self.walls.currentText())
        mesh = replace(
            scenario.mesh, size=self.mesh_size.value(), obstacle_size=self.obstacle_size.value()
        )
        self.apply(scenario.replace(tunnel=tunnel, mesh=mesh))

    def _clear_mesh_file(self) -> None:
        scenario = self.state.scenario
        self.apply(scenario.replace(mesh=replace(scenario.mesh, file=None)))

    def apply(self, scenario: Scenario) -> bool:
        """Commit an edited scenario if its fields are valid; otherwise say why in the panel."""
        try:
            scenario = checked(scenario)
        except ScenarioError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        self.state.set_scenario(scenario)
        return True

    def show_mesh_info(self, text: str, error: bool = False) -> None:
        self.mesh_info.setText("" if error else text)
        self.error.setText(text if error else "")
