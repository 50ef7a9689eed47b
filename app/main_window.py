"""The main window: docks the panels around the viewport and runs meshing and runs off-thread.

Flow: a panel edits :class:`AppState`; a scenario change that touches the geometry schedules a
re-mesh (debounced, and merged by :class:`LatestOnlyRunner`); a finished mesh replaces the
viewport's mesh. Run starts a :class:`RunWorker` whose frames land in the :class:`FrameStore`;
a timer on the GUI thread shows the newest one, so rendering never queues behind the model.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app import backends
from app.dialogs.export import ExportDialog
from app.export import (
    ExportOptions,
    as_trajectory,
    export_vtk_series,
    export_xdmf,
    write_forces_csv,
    write_movie,
    write_probes_csv,
)
from app.frame_store import FrameStore
from app.panels.geometry import MESH_FILE_SUFFIXES, SHAPE_FILE_SUFFIXES, GeometryPanel
from app.panels.inflow import InflowPanel
from app.panels.model import ModelPanel
from app.panels.run import RunPanel
from app.panels.view import ViewPanel
from app.plots import PlotsPanel
from app.state import AppState, ModelChoice, RecentFiles, Session
from app.viewport import Viewport
from app.workers import LatestOnlyRunner, RunWorker
from engine.errors import DivergenceError, SlipstreamError
from engine.frame import Frame
from engine.geometry import build_tunnel_mesh, outline
from engine.geometry.mesh import TunnelMesh
from engine.geometry.meshfile import load_mesh_file
from engine.geometry.quality import mesh_quality
from engine.scenario import FileShape, Scenario

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "assets" / "scenarios"
RENDER_INTERVAL_MS = 15
READOUT_INTERVAL_MS = 250
REMESH_DELAY_MS = 250
DEFAULT_SIZE = (1400, 900)


def fitted_size(
    available: tuple[int, int], wanted: tuple[int, int] = DEFAULT_SIZE
) -> tuple[int, int]:
    """The default window size, shrunk to a smaller screen's free area (less a margin for the
    window frame), so that no panel of a laptop's first window starts off-screen."""
    return min(wanted[0], int(0.95 * available[0])), min(wanted[1], int(0.9 * available[1]))


FrameSourceFactory = Callable[[threading.Event], Iterator[Frame]]


def geometry_key(scenario: Scenario) -> str:
    """What meshing depends on; edits elsewhere (inflow, fluid, time) keep the mesh."""
    data = scenario.to_dict()
    return repr((data["tunnel"], data["obstacles"], data["mesh"], scenario.base_dir))


def error_text(exc: BaseException) -> str:
    if isinstance(exc, SlipstreamError):
        return str(exc)
    return (
        f"Unexpected {type(exc).__name__}: {exc}\n(This is a bug in Slipstream; please report it.)"
    )


class MainWindow(QMainWindow):
    mesh_ready = Signal()
    mesh_failed = Signal(str)
    run_finished = Signal(str)  # "finished", "cancelled", "failed"

    def __init__(
        self,
        session: Session | None = None,
        *,
        multi_samples: int = 0,
        interactive: bool = True,
        recent: RecentFiles | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Slipstream")
        self.setAcceptDrops(True)
        self.interactive = interactive  # False: errors go to stderr, never to a modal box
        self.errors: list[str] = []
        self.recent = recent or RecentFiles()
        self.state = AppState(session)
        self.store = FrameStore()
        self.mesh: TunnelMesh | None = None
        self.worker: RunWorker | None = None
        self._mesh_key: str | None = None
        self._mesh_scenario: Scenario | None = None
        self._start_when_meshed = False
        self._simulator = None  # the chosen learned model once loaded, for its card
        self._shown_count = -1
        self._live = True
        self._fps_sample = (time.perf_counter(), 0)  # (when, viewport renders then)
        self.viewport_fps = 0.0  # repaints per second over the last readout interval

        self.viewport = Viewport(self.state, multi_samples=multi_samples)
        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.setObjectName("timeline")
        self.timeline.setEnabled(False)
        self.timeline.valueChanged.connect(self._scrub)
        self.live_box = QCheckBox("Live")
        self.live_box.setChecked(True)
        self.live_box.setToolTip("follow the newest frame; uncheck or drag the slider to scrub")
        self.live_box.toggled.connect(self._set_live)
        self.timeline_label = QLabel("")
        bar = QHBoxLayout()
        bar.addWidget(self.timeline, 1)
        bar.addWidget(self.timeline_label)
        bar.addWidget(self.live_box)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.viewport, 1)
        column.addLayout(bar)
        self.setCentralWidget(central)

        self.geometry_panel = GeometryPanel(self.state)
        self.inflow_panel = InflowPanel(self.state)
        self.model_panel = ModelPanel(self.state)
        self.run_panel = RunPanel(self.state)
        self.view_panel = ViewPanel(self.state)
        self.plots = PlotsPanel(self.store)
        run_dock = self._dock("Run", self.run_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        tabs = [
            ("Geometry", self.geometry_panel),
            ("Inflow && fluid", self.inflow_panel),
            ("Model", self.model_panel),
            ("View", self.view_panel),
        ]
        docks = [self._dock(t, w, Qt.DockWidgetArea.LeftDockWidgetArea) for t, w in tabs]
        self.splitDockWidget(run_dock, docks[0], Qt.Orientation.Vertical)
        for dock in docks[1:]:
            self.tabifyDockWidget(docks[0], dock)
        docks[0].raise_()
        plots_dock = self._dock("Plots", self.plots, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([run_dock, docks[0]], [170, 600], Qt.Orientation.Vertical)
        self.resizeDocks([plots_dock], [260], Qt.Orientation.Vertical)
        self.resizeDocks([docks[0]], [340], Qt.Orientation.Horizontal)

        self.status_labels = {k: QLabel() for k in ("step", "time", "ms", "fps", "device", "nodes")}
        for label in self.status_labels.values():
            self.statusBar().addPermanentWidget(label)

        self.mesher = LatestOnlyRunner(self)
        self.mesher.done.connect(self._mesh_done)
        self.mesher.failed.connect(self._mesh_error)
        self.mesher.busy_changed.connect(
            lambda busy: self.statusBar().showMessage("Meshing…") if busy else None
        )
        self.model_loader = LatestOnlyRunner(self)
        self.model_loader.done.connect(self._model_loaded)
        self.model_loader.failed.connect(self._model_error)
        self._remesh_timer = QTimer(self, singleShot=True, interval=REMESH_DELAY_MS)
        self._remesh_timer.timeout.connect(self.remesh)
        self.render_timer = QTimer(self, interval=RENDER_INTERVAL_MS)
        self.render_timer.timeout.connect(self._tick)
        self.render_timer.start()
        self.plot_timer = QTimer(self, interval=READOUT_INTERVAL_MS)
        self.plot_timer.timeout.connect(self._refresh_readouts)
        self.plot_timer.start()

        self.state.scenario_changed.connect(self._scenario_changed)
        self.state.model_changed.connect(lambda _: self._model_changed())
        self.state.probes_changed.connect(lambda _: self._refresh_plots())
        self.state.run_changed.connect(self._playback_changed)
        self.geometry_panel.open_geometry_requested.connect(self.open_geometry_dialog)
        self.geometry_panel.remesh_requested.connect(self.remesh)
        self.model_panel.open_model_requested.connect(self.open_model_dialog)
        self.run_panel.run_pause_clicked.connect(self.run_pause)
        self.run_panel.step_clicked.connect(self.step)
        self.run_panel.reset_clicked.connect(self.reset)
        self.view_panel.fit_clicked.connect(self.viewport.fit)
        self.view_panel.probe_mode_toggled.connect(self._set_probe_mode)
        self.view_panel.clear_probes_clicked.connect(self.state.clear_probes)
        self.viewport.probe_clicked.connect(self.state.add_probe)

        self._build_menus()
        screen = self.screen()
        free = screen.availableGeometry().size() if screen is not None else None
        self.resize(*(DEFAULT_SIZE if free is None else fitted_size((free.width(), free.height()))))
        self._update_status()
        self.remesh()
        self._model_changed()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title.replace("&&", "&"), self)
        dock.setObjectName(title)
        if area == Qt.DockWidgetArea.LeftDockWidgetArea:
            scroll = QScrollArea()  # tall panels scroll instead of forcing a tall window
            scroll.setWidget(widget)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            widget = scroll
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # ---- menus and shortcuts --------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(
            file_menu,
            "Open scenario or session…",
            self.open_file_dialog,
            QKeySequence.StandardKey.Open,
        )
        self._action(file_menu, "Open geometry…", self.open_geometry_dialog)
        presets = file_menu.addMenu("Presets")
        for path in sorted(SCENARIOS_DIR.glob("*.json")):
            presets.addAction(path.stem, lambda p=path: self.open_path(p))
        self.recent_menu = file_menu.addMenu("Recent files")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self._action(
            file_menu, "Save session…", self.save_session_dialog, QKeySequence.StandardKey.Save
        )
        self._action(file_menu, "Save scenario…", self.save_scenario_dialog)
        self._action(file_menu, "Export…", self.export_dialog, QKeySequence("Ctrl+E"))
        self._action(file_menu, "Screenshot…", self.screenshot_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Run / Pause", self.run_pause, QKeySequence(Qt.Key.Key_Space))
        self._action(run_menu, "Step", self.step, QKeySequence(Qt.Key.Key_S))
        self._action(run_menu, "Reset", self.reset, QKeySequence(Qt.Key.Key_R))
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "Fit view", self.viewport.fit, QKeySequence(Qt.Key.Key_F))
        self._action(view_menu, "Full screen", self._toggle_full_screen, QKeySequence("F11"))
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent.list():
            self.recent_menu.addAction(path, lambda p=path: self.open_path(Path(p)))

    # ---- errors ---------------------------------------------------------------------------------
    def show_error(self, title: str, exc: BaseException | str) -> None:
        """Tell the user, in words: a message box when interactive, stderr in scripted mode."""
        text = exc if isinstance(exc, str) else error_text(exc)
        self.errors.append(f"{title}: {text}")
        self.statusBar().showMessage(f"{title}: {text.splitlines()[0]}", 15000)
        if self.interactive:
            QMessageBox.warning(self, title, text)
        else:
            print(f"error: {title}: {text}", file=sys.stderr)

    # ---- files ----------------------------------------------------------------------------------
    def open_path(self, path: Path) -> bool:
        """Open a scenario, session, shape or mesh file by its type; on failure say why, and
        return False."""
        path = Path(path)
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                self._open_json(path)
            elif suffix in SHAPE_FILE_SUFFIXES:
                self.add_shape_file(path)
            elif suffix in MESH_FILE_SUFFIXES:
                self.use_mesh_file(path)
            else:
                raise SlipstreamError(
                    f"{path.name}: Slipstream does not open {suffix or 'these'} "
                    "files (scenario/session .json, shape .dat/.stl/.obj/.ply, "
                    "mesh .msh/.vtu)"
                )
        except (SlipstreamError, OSError, ValueError) as exc:
            self.show_error(f"Cannot open {path.name}", exc)
            return False
        self.recent.add(path)
        return True

    def _open_json(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SlipstreamError(f"{path.name} is not valid JSON ({exc})") from None
        if isinstance(data, dict) and "slipstream_session" in data:
            session = Session.from_dict(data, base_dir=path.resolve().parent)
            self.reset()
            self.state.load_session(session)
            self.setWindowTitle(f"Slipstream — {path.name}")
            return
        scenario = Scenario.load(path)
        self.reset()
        self.state.set_scenario(scenario)
        self.state.update_run(steps=scenario.time.steps)
        self.setWindowTitle(f"Slipstream — {scenario.name}")

    def add_shape_file(self, path: Path) -> None:
        """Add an obstacle outlined by a shape file, checked by loading its outline first."""
        scenario = self.state.scenario
        tunnel = scenario.tunnel
        obstacle = FileShape(
            str(path.resolve()),
            (0.3 * tunnel.length, 0.5 * tunnel.height),
            scale=0.4 * tunnel.height,
        )
        outline(obstacle, scenario)  # raises GeometryError for a broken file
        if not self.geometry_panel.apply(
            scenario.replace(obstacles=(*scenario.obstacles, obstacle))
        ):
            raise SlipstreamError(self.geometry_panel.error.text())

    def use_mesh_file(self, path: Path) -> None:
        """Use a 2D mesh as it is: the tunnel takes its extent; its obstacles come with it."""
        mesh = load_mesh_file(path)
        lo, hi = mesh.points.min(axis=0), mesh.points.max(axis=0)
        scenario = self.state.scenario
        tunnel = replace(scenario.tunnel, length=float(hi[0] - lo[0]), height=float(hi[1] - lo[1]))
        self.state.set_scenario(
            scenario.replace(
                tunnel=tunnel, obstacles=(), mesh=replace(scenario.mesh, file=str(path.resolve()))
            )
        )

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open scenario or session", str(SCENARIOS_DIR), "Scenario or session (*.json)"
        )
        if path:
            self.open_path(Path(path))

    def open_geometry_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in SHAPE_FILE_SUFFIXES + MESH_FILE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open geometry", "", f"Geometry ({patterns})")
        if path:
            self.open_path(Path(path))

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model", "", "Slipstream model (*.safetensors *.json)"
        )
        if path:
            self.state.set_model(
                ModelChoice(str(Path(path).with_suffix("")), self.state.model.device)
            )

    def save_session(self, path: Path) -> None:
        try:
            self.state.session.save(path)
        except OSError as exc:
            self.show_error("Cannot save the session", f"{path}: {exc.strerror}")
            return
        self.recent.add(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)

    def save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json", "*.json")
        if path:
            self.save_session(Path(path))

    def save_scenario_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save scenario", "scenario.json", "*.json")
        if path:
            try:
                self.state.scenario.save(path)
            except OSError as exc:
                self.show_error("Cannot save the scenario", f"{path}: {exc.strerror}")

    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Screenshot", "slipstream.png", "*.png")
        if path:
            self.viewport.screenshot(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(Path(url.toLocalFile()))

    # ---- meshing --------------------------------------------------------------------------------
    def _scenario_changed(self, scenario: Scenario) -> None:
        self.reset()
        if geometry_key(scenario) != self._mesh_key:
            self._remesh_timer.start()
        else:
            self._refresh_envelope()

    def remesh(self) -> None:
        """Mesh the current scenario in the background; only the newest request's mesh is shown."""
        scenario = self.state.scenario
        key = geometry_key(scenario)
        self.mesher.submit(key, lambda: (scenario, build_tunnel_mesh(scenario)))

    def _mesh_done(self, key: str, result: tuple[Scenario, TunnelMesh]) -> None:
        scenario, mesh = result
        self.reset()
        self.mesh, self._mesh_key, self._mesh_scenario = mesh, key, scenario
        self.viewport.set_mesh(mesh, scenario)
        quality = mesh_quality(mesh)
        self.geometry_panel.show_mesh_info(
            f"{quality.num_nodes} nodes, {quality.num_cells} triangles, "
            f"min angle {quality.min_angle_deg:.1f}°"
        )
        self.statusBar().showMessage(f"Meshed: {mesh.num_nodes} nodes", 5000)
        self._update_status()
        self._refresh_envelope()
        self.mesh_ready.emit()
        if self._start_when_meshed:
            self._start_when_meshed = False
            self.run_pause()

    def _mesh_error(self, key: str, exc: Exception) -> None:
        self._start_when_meshed = False
        self.geometry_panel.show_mesh_info(f"Meshing failed: {error_text(exc)}", error=True)
        self.statusBar().showMessage(f"Meshing failed: {error_text(exc).splitlines()[0]}", 15000)
        self.errors.append(f"Meshing failed: {error_text(exc)}")
        if not self.interactive:
            print(f"error: meshing failed: {error_text(exc)}", file=sys.stderr)
        self.mesh_failed.emit(error_text(exc))

    @property
    def mesh_is_current(self) -> bool:
        return self.mesh is not None and self._mesh_key == geometry_key(self.state.scenario)

    # ---- model ----------------------------------------------------------------------------------
    def _model_changed(self) -> None:
        self.reset()
        self._update_status()
        self._simulator = None
        choice = self.state.model
        if choice.is_reference:
            self.model_panel.show_card("The reference Navier–Stokes solver: slow, exact.", [])
            return
        self.model_panel.show_card("Loading model…", [])
        self.model_loader.submit(choice, lambda: backends.load_simulator(choice))

    def _model_loaded(self, choice: ModelChoice, simulator) -> None:
        if choice != self.state.model:
            return  # the user has chosen another backend since
        self._simulator = simulator
        self._refresh_envelope()

    def _model_error(self, choice: ModelChoice, exc: Exception) -> None:
        self.model_panel.show_card("", [])
        self.show_error(f"Cannot use model {Path(choice.backend).name}", exc)

    def _refresh_envelope(self) -> None:
        """Show the loaded model's card and where the scenario leaves its training envelope
        (nothing until the model loader has finished: loading never happens on this thread)."""
        simulator = self._simulator
        if simulator is None or self.state.model.is_reference:
            return
        warnings = []
        if self.mesh_is_current:
            warnings = simulator.card.envelope_warnings(self.state.scenario, self.mesh)
        self.model_panel.show_card(backends.describe_card(simulator.card), warnings)

    # ---- running --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def run_pause(self) -> None:
        if self.running:
            assert self.worker is not None
            if self.worker.paused:
                self.worker.resume()
            else:
                self.worker.pause()
            return
        if not self.mesh_is_current:
            self._start_when_meshed = True
            if not self.mesher.busy:
                self.remesh()
            return
        self.start_run()

    def step(self) -> None:
        """One more frame; starts a paused run if none is going."""
        if not self.running:
            if not self.mesh_is_current:
                return
            self.start_run(paused=True)
        assert self.worker is not None
        if not self.worker.paused:
            self.worker.pause()
        self.worker.step()

    def start_run(
        self, paused: bool = False, make_source: FrameSourceFactory | None = None
    ) -> None:
        """Start a run from rest with the chosen backend (or ``make_source``, e.g. a benchmark's
        replay), on the current mesh."""
        assert self.mesh is not None
        self.reset()
        choice, scenario, mesh = self.state.model, self.state.scenario, self.mesh
        steps = self.state.run.steps
        if make_source is None:

            def make_source(cancel: threading.Event) -> Iterator[Frame]:
                return backends.frame_source(choice, scenario, mesh, steps, cancel)

        worker = RunWorker(
            make_source, self.store, max_rate=self.state.run.playback_rate, parent=self
        )
        worker.failed.connect(self._run_failed)
        worker.state_changed.connect(self._run_state)
        worker.finished.connect(lambda: self._worker_done(worker))
        if paused:
            worker.pause()
        self.worker = worker
        worker.start()
        self.run_panel.show_run_state("paused" if paused else "running")

    def _playback_changed(self, run) -> None:
        if self.worker is not None:
            self.worker.max_rate = run.playback_rate

    def _run_state(self, state: str) -> None:
        self.run_panel.show_run_state(state)

    def _run_failed(self, exc: Exception) -> None:
        text = error_text(exc)
        if isinstance(exc, DivergenceError):
            # What was computed is still good and the user's next move is not obvious.
            text += (
                f"\nThe frames before step {exc.step} are kept: scrub the timeline or export "
                "them. A learned model drifts on flows unlike those it was trained on (the "
                "Model panel shows its training envelope); another model there, or the "
                "reference solver, may get further."
            )
        self.show_error("The run stopped", text)

    def _worker_done(self, worker: RunWorker) -> None:
        worker.wait()
        if self.worker is worker:
            self.worker = None
            self._tick()
            self._refresh_readouts()
            self.run_finished.emit(worker.outcome)
        worker.deleteLater()

    def reset(self) -> None:
        """Stop any run and show the fluid at rest (the run's frames are discarded)."""
        if self.worker is not None:
            self.worker.cancel()
            self.worker = None  # its finished signal still cleans it up
        self.store.clear()
        self._shown_count = -1
        self._live = True
        self.live_box.setChecked(True)
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, 0)
        self.timeline.blockSignals(False)
        self.timeline.setEnabled(False)
        self.timeline_label.setText("")
        self.run_panel.show_run_state("idle")
        if self.mesh is not None:
            self.viewport.show_frame(None)
        self.plots.reset(len(self.state.scenario.obstacles), len(self.state.probes))
        self._update_status()

    def wait_for_threads(self, timeout_ms: int = 10000) -> bool:
        """Block until meshing, model loading and any cancelled runs have stopped."""
        deadline = time.monotonic() + timeout_ms / 1000
        for worker in self.findChildren(RunWorker):
            worker.cancel()
            worker.wait(max(1, int(1000 * (deadline - time.monotonic()))))
        ok = self.mesher.wait(timeout_ms) and self.model_loader.wait(timeout_ms)
        return ok and not any(w.isRunning() for w in self.findChildren(RunWorker))

    # ---- the render loop ------------------------------------------------------------------------
    def _tick(self) -> None:
        """Show the newest frame if there is one we have not shown; frames in between are
        skipped, which is how a slow render drops frames instead of falling behind."""
        count = self.store.count
        if count == self._shown_count or not self._live:
            return
        self._shown_count = count
        frame = self.store.latest()
        if frame is not None:
            self.viewport.show_frame(frame)

    def _refresh_readouts(self) -> None:
        """Timeline, status bar and plots, a few times a second: with an OpenGL viewport every
        repaint of another widget recomposes the window, so these must not follow each frame."""
        n = len(self.store)
        self.timeline.setEnabled(n > 1)
        self.timeline.blockSignals(True)
        self.timeline.setMaximum(max(n - 1, 0))
        if self._live:
            self.timeline.setValue(max(n - 1, 0))
        self.timeline.blockSignals(False)
        self.timeline_label.setText(f"{n} frames kept" if n else "")
        now, renders = time.perf_counter(), self.viewport.renders
        then, before = self._fps_sample
        self.viewport_fps = (renders - before) / max(now - then, 1e-6)
        self._fps_sample = (now, renders)
        self._update_status()
        self._refresh_plots()

    def _set_live(self, live: bool) -> None:
        self._live = live
        if live:
            self._shown_count = -1
            self._tick()

    def _scrub(self, index: int) -> None:
        if 0 <= index < len(self.store):
            if self._live:
                self.live_box.setChecked(False)
            self.viewport.show_frame(self.store[index])
            self._update_status(self.store[index])

    def _refresh_plots(self) -> None:
        if self.mesh is None:
            return
        nodes = self.viewport.probe_nodes(self.state.probes)
        self.plots.refresh(self.state.scenario, nodes)

    def _update_status(self, frame: Frame | None = None) -> None:
        frame = frame or (self.viewport.frame if self.mesh is not None else None)
        labels = self.status_labels
        labels["step"].setText(f"step {frame.step if frame else 0}")
        labels["time"].setText(f"t = {frame.time if frame else 0.0:.3f} s")
        ms = self.store.history(last=20).ms_per_step
        labels["ms"].setText(f"{np.mean(ms):.1f} ms/step" if len(ms) else "– ms/step")
        labels["fps"].setText(f"{self.viewport_fps:.0f} fps")
        model = self.state.model
        backend = "reference solver" if model.is_reference else Path(model.backend).name
        device = "CPU" if model.is_reference else model.device.upper()
        labels["device"].setText(f"{backend} on {device}")
        labels["nodes"].setText(f"{self.mesh.num_nodes if self.mesh else 0} nodes")

    def _set_probe_mode(self, on: bool) -> None:
        self.viewport.probe_mode = on
        self.statusBar().showMessage(
            "Click in the viewport to place a probe" if on else "", 5000 if on else 1
        )

    # ---- export ---------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if not self.store.count or self.mesh is None:
            self.show_error("Nothing to export", "Run the simulation first.")
            return
        dialog = ExportDialog(self)
        if dialog.exec():
            self.export(dialog.options())

    def export(self, options: ExportOptions) -> list[Path]:
        """Write what ``options`` asks for; long parts show progress and can be cancelled."""
        if self.mesh is None or not self.store.count:
            self.show_error("Nothing to export", "Run the simulation first.")
            return []
        out = options.folder
        frames = self.store.frames()
        if options.current_frame_only:
            current = self.viewport.frame or self.store.latest()
            frames = [current] if current is not None else []
        written: list[Path] = []
        progress = QProgressDialog("Exporting…", "Cancel", 0, 100, self)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)

        def report(done: int, total: int) -> None:
            progress.setMaximum(total)
            progress.setValue(done)
            QApplication.processEvents()

        cancelled = progress.wasCanceled
        try:
            out.mkdir(parents=True, exist_ok=True)
            traj = as_trajectory(self.mesh, frames, self.state.scenario)
            if options.vtk:
                progress.setLabelText("Writing VTU + PVD…")
                written.append(export_vtk_series(traj, out, report, cancelled))
            if options.xdmf and not cancelled():
                progress.setLabelText("Writing XDMF…")
                written.append(export_xdmf(traj, out, report, cancelled))
            if options.csv and not cancelled():
                written.append(write_forces_csv(self.store.history(), out / "forces.csv"))
                if self.state.probes:
                    nodes = self.viewport.probe_nodes(self.state.probes)
                    written.append(
                        write_probes_csv(frames, self.state.probes, nodes, out / "probes.csv")
                    )
            if options.png and not cancelled():
                path = out / "frame.png"
                self.viewport.screenshot(str(path))
                written.append(path)
            for suffix in options.movies:
                if cancelled():
                    break
                progress.setLabelText(f"Rendering {suffix.upper()} movie…")
                movie = write_movie(
                    self._rendered(frames),
                    out / f"run.{suffix}",
                    options.movie_fps,
                    len(frames),
                    report,
                    cancelled,
                )
                if movie is not None:
                    written.append(movie)
        except (SlipstreamError, OSError, ValueError, RuntimeError) as exc:
            self.show_error("Export failed", exc)
        finally:
            progress.close()
            if not self._live or options.movies:
                self._set_live(True)
        state = "cancelled" if cancelled() else "done"
        self.statusBar().showMessage(f"Export {state}: {len(written)} file(s) in {out}", 10000)
        return written

    def _rendered(self, frames: list[Frame]):
        """Each frame drawn by the viewport and read back (VTK only renders on this thread)."""
        for frame in frames:
            self.viewport.show_frame(frame)
            yield self.viewport.plotter.screenshot(None, return_img=True)

    # ---- shutdown -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.render_timer.stop()
        self.plot_timer.stop()
        self._remesh_timer.stop()
        self.wait_for_threads()
        self.viewport.close_plotter()
        super().closeEvent(event)
