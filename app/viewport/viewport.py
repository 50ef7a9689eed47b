"""The tunnel mesh in a pyvistaqt ``QtInteractor``, recoloured in place as frames arrive.

Only the GUI thread calls into this widget. Each frame overwrites the point arrays of one
``PolyData`` that was added once (``add_mesh`` per frame is slow and leaks actors, STYLE.md) and
renders; the caller decides how often, so a slow render drops frames instead of queueing them.
"""

from __future__ import annotations

import time

import numpy as np
import pyvista as pv
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from scipy.spatial import cKDTree

from app.state import FIELDS, AppState, ViewState
from app.viewport.overlays import glyphs_actor, streamlines_actor
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.io.derived import VertexGradient
from engine.scenario import Scenario

BACKGROUND = "#1e2127"
OUTLINE_COLOR = "#f0f0f0"
PROBE_COLOR = "#ff4081"


def colorbar_title(field: str) -> str:
    label, unit = FIELDS[field]
    return f"{label} [{unit}]"


class Viewport(QWidget):
    """Shows one mesh and one frame at a time; ``probe_clicked`` reports clicks in probe mode."""

    probe_clicked = Signal(float, float)

    def __init__(self, state: AppState, multi_samples: int = 0, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.plotter = QtInteractor(self, multi_samples=multi_samples, auto_update=False)
        self.plotter.set_background(BACKGROUND)
        self.plotter.enable_2d_style()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plotter.interactor)

        self.mesh: TunnelMesh | None = None
        self.frame: Frame | None = None
        self.grid: pv.PolyData | None = None
        self._gradient: VertexGradient | None = None
        self._tree: cKDTree | None = None
        self._surface = None
        self._outlines = None
        self._probes = None
        self._overlay = None
        self._overlay_kind = "none"
        self._glyph_sample: pv.PolyData | None = None
        self._glyph_index: np.ndarray | None = None
        self._scenario: Scenario | None = None
        self.probe_mode = False
        self.renders = 0
        self.last_render_ms = 0.0
        self._render_started = 0.0
        window = self.plotter.render_window
        window.AddObserver("StartEvent", self._on_render_start)
        window.AddObserver("EndEvent", self._on_render_end)

        self.plotter.track_click_position(self._on_click, side="left")
        state.view_changed.connect(self._apply_view)
        state.probes_changed.connect(self._show_probes)

    # ---- mesh and frames ------------------------------------------------------------------------
    def set_mesh(self, mesh: TunnelMesh, scenario: Scenario) -> None:
        """Replace the displayed mesh (after meshing); the fields start at rest."""
        self.plotter.clear_actors()
        if self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar()
        self.mesh, self._scenario, self.frame = mesh, scenario, None
        points = np.column_stack([mesh.points[:, :2], np.zeros(mesh.num_nodes)])
        faces = np.column_stack([np.full(len(mesh.cells), 3), mesh.cells]).ravel()
        self.grid = pv.PolyData(points, faces)
        self.grid.point_data["display"] = np.zeros(mesh.num_nodes, dtype=np.float32)
        self.grid.point_data["velocity"] = np.zeros((mesh.num_nodes, 3), dtype=np.float32)
        self.grid.point_data.active_scalars_name = "display"
        self._gradient = VertexGradient.from_mesh(mesh.points, mesh.cells)
        self._tree = cKDTree(mesh.points[:, :2])
        view = self.state.view
        self._surface = self.plotter.add_mesh(
            self.grid,
            scalars="display",
            cmap=view.cmap,
            clim=view.fixed_range,
            show_edges=view.show_edges,
            edge_color="#60646c",
            line_width=0.5,
            scalar_bar_args={
                "title": colorbar_title(view.field),
                "vertical": False,
                "position_x": 0.3,
                "position_y": 0.04,
                "width": 0.4,
                "height": 0.07,
                "fmt": "%.3g",
                "color": "white",
            },
            render=False,
        )
        self._outlines = self.plotter.add_mesh(
            _outline_lines(mesh), color=OUTLINE_COLOR, line_width=2.0, render=False
        )
        self._overlay, self._overlay_kind = None, "none"
        self._apply_overlay(view)
        self._show_probes(self.state.probes)
        self._apply_view(view)
        self.fit()

    def show_frame(self, frame: Frame | None) -> None:
        """Recolour by ``frame`` (None: the fluid at rest) and render."""
        if self.grid is None or self.mesh is None:
            return
        self.frame = frame
        if frame is not None and len(frame.u) != self.mesh.num_nodes:
            return  # a frame of a previous mesh, still in flight when the mesh changed
        self._update_arrays()
        self.render()

    def field_values(self, frame: Frame | None = None) -> np.ndarray:
        """The displayed field of ``frame`` (default: the current one) at the vertices."""
        frame = frame if frame is not None else self.frame
        assert self.mesh is not None
        if frame is None:
            return np.zeros(self.mesh.num_nodes)
        field = self.state.view.field
        if field == "speed":
            return np.hypot(frame.u, frame.v)
        if field == "vorticity":
            assert self._gradient is not None
            return self._gradient.vorticity(frame.u, frame.v)
        return np.asarray(getattr(frame, field))

    def _update_arrays(self) -> None:
        assert self.grid is not None
        values = self.field_values()
        self.grid.point_data["display"][:] = values
        velocity = self.grid.point_data["velocity"]
        if self.frame is not None:
            velocity[:, 0] = self.frame.u
            velocity[:, 1] = self.frame.v
        else:
            velocity[:] = 0.0
        self.grid.Modified()
        if self._glyph_sample is not None:
            self._glyph_sample.point_data["velocity"][:] = velocity[self._glyph_index]
            self._glyph_sample.Modified()
        view = self.state.view
        if view.auto_range and self._surface is not None:
            self._surface.mapper.scalar_range = auto_range(values, view.field)

    def render(self) -> None:
        """Schedule one repaint. The widget's paint renders the scene once; calling the plotter's
        render here as well would draw every frame twice, and Qt merges repeated requests."""
        self.plotter.update()

    def _on_render_start(self, *_: object) -> None:
        self._render_started = time.perf_counter()

    def _on_render_end(self, *_: object) -> None:
        self.last_render_ms = 1000.0 * (time.perf_counter() - self._render_started)
        self.renders += 1

    def fit(self) -> None:
        """Look straight down on the whole tunnel, filling the window with a small margin."""
        if self.mesh is None:
            return
        lo, hi = self.mesh.points.min(axis=0), self.mesh.points.max(axis=0)
        center = 0.5 * (lo + hi)
        self.plotter.view_xy()
        camera = self.plotter.camera
        camera.enable_parallel_projection()
        camera.focal_point = (center[0], center[1], 0.0)
        camera.position = (center[0], center[1], 10.0 * float((hi - lo).max()))
        width, height = self.plotter.window_size
        aspect = max(width, 1) / max(height, 1)
        half_height = max(0.5 * (hi[1] - lo[1]), 0.5 * (hi[0] - lo[0]) / aspect)
        camera.parallel_scale = 1.08 * half_height
        self.plotter.reset_camera_clipping_range()
        self.render()

    def screenshot(self, path: str) -> None:
        # widget.grab() leaves the 3D area blank under Xvfb; the plotter's own capture works.
        self.plotter.screenshot(path)

    def close_plotter(self) -> None:
        self.plotter.close()

    # ---- view state -----------------------------------------------------------------------------
    def _apply_view(self, view: ViewState) -> None:
        if self._surface is None:
            return
        bar = next(iter(self.plotter.scalar_bars.values()), None)
        if bar is not None:
            bar.SetTitle(colorbar_title(view.field))
        self._surface.mapper.lookup_table.cmap = view.cmap
        self._surface.prop.show_edges = view.show_edges
        if self._outlines is not None:
            self._outlines.SetVisibility(view.show_outlines)
        self._apply_overlay(view)
        if not view.auto_range:
            self._surface.mapper.scalar_range = view.fixed_range
        self._update_arrays()
        self.render()

    def _apply_overlay(self, view: ViewState) -> None:
        wanted = view.overlay
        if wanted == self._overlay_kind or self.grid is None or self._scenario is None:
            return
        if self._overlay is not None:
            self.plotter.remove_actor(self._overlay, render=False)
        self._overlay, self._glyph_sample, self._glyph_index = None, None, None
        self._overlay_kind = wanted
        tunnel = self._scenario.tunnel
        if wanted == "streamlines":
            self._overlay = streamlines_actor(self.grid, tunnel.length, tunnel.height)
        elif wanted == "glyphs":
            scale = 0.04 * tunnel.length / self._scenario.inflow.mean_speed
            self._overlay, self._glyph_sample, self._glyph_index = glyphs_actor(self.grid, scale)
        if self._overlay is not None:
            self.plotter.add_actor(self._overlay, reset_camera=False, render=False)

    # ---- probes ---------------------------------------------------------------------------------
    def probe_nodes(self, probes: list[tuple[float, float]]) -> np.ndarray:
        """The nearest mesh vertex of each probe point."""
        if self._tree is None or not probes:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._tree.query(np.asarray(probes))[1], dtype=np.int64)

    def _show_probes(self, probes: list[tuple[float, float]]) -> None:
        if self._probes is not None:
            self.plotter.remove_actor(self._probes, render=False)
            self._probes = None
        if probes and self.grid is not None:
            pts = np.column_stack([np.asarray(probes), np.full(len(probes), 0.003)])
            self._probes = self.plotter.add_points(
                pts, color=PROBE_COLOR, point_size=12, render_points_as_spheres=True, render=False
            )
        self.render()

    def _on_click(self, position) -> None:
        if self.probe_mode and self.mesh is not None:
            x, y = float(position[0]), float(position[1])
            self.probe_clicked.emit(x, y)


def auto_range(values: np.ndarray, field: str) -> tuple[float, float]:
    """Colour range of a field: min–max, symmetric about zero for vorticity (robust to the few
    extreme values at sharp corners)."""
    if values.size == 0:
        return (0.0, 1.0)
    if field == "vorticity":
        top = float(np.percentile(np.abs(values), 99.0)) or 1.0
        return (-top, top)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return (lo, hi)


def _outline_lines(mesh: TunnelMesh) -> pv.PolyData:
    """Every obstacle's boundary edges as line segments, lifted slightly above the surface."""
    edges = [e for name, e in mesh.boundary_edges.items() if name.startswith("obstacle-")]
    points = np.column_stack([mesh.points[:, :2], np.full(mesh.num_nodes, 0.001)])
    if not edges:
        return pv.PolyData(points)
    segs = np.concatenate(edges)
    lines = np.column_stack([np.full(len(segs), 2), segs]).ravel()
    return pv.PolyData(points, lines=lines)
