"""Force coefficients per obstacle and probe time series, redrawn a few times a second.

The plots read the frame store's history (every step) rather than receiving frames, so they
cost nothing while hidden and never fall behind the run. The Strouhal number comes from the
engine's force statistics, the same numbers the benchmarks report.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.frame_store import FrameStore, History
from engine.evaluation.metrics import force_stats
from engine.scenario import Scenario

PLOTTED_STEPS = 5000  # the plots show the most recent steps; exports keep them all
PLOTTED_FRAMES = 1000
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def strouhal_numbers(history: History, scenario: Scenario) -> list[float | None]:
    """St of each obstacle's lift over the second half of ``history`` (None: not shedding)."""
    if len(history.time) < 16:
        return [None] * history.coefficients.shape[1]
    dt = float(np.median(np.diff(history.time)))
    out: list[float | None] = []
    for i in range(history.coefficients.shape[1]):
        stats = force_stats(
            history.coefficients[:, i, :],
            dt,
            scenario.reference_length,
            scenario.inflow.mean_speed,
        )
        out.append(stats.strouhal)
    return out


class PlotsPanel(QWidget):
    def __init__(self, store: FrameStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=False, background="w", foreground="k")
        self.store = store
        self.forces = pg.PlotWidget(title="Force coefficients")
        self.forces.setLabel("bottom", "time", units="s")
        self.forces.addLegend(offset=(5, 5))
        self.probes = pg.PlotWidget(title="Probes |u|")
        self.probes.setLabel("bottom", "time", units="s")
        self.probes.setLabel("left", "|u|", units="m/s")
        self.probes.addLegend(offset=(5, 5))
        self.strouhal = QLabel("St: –")
        self.strouhal.setObjectName("strouhal")
        plots = QHBoxLayout()
        plots.addWidget(self.forces)
        plots.addWidget(self.probes)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(plots)
        layout.addWidget(self.strouhal)
        self._force_curves: list[pg.PlotDataItem] = []
        self._probe_curves: list[pg.PlotDataItem] = []
        # The inflow's start-up ramp, shaded: a learned model's forces are least right there
        # (docs/user-guide.md), and a user reading the plot should know which part that is.
        self.ramp_band = pg.LinearRegionItem(
            values=(0.0, 0.0), movable=False, brush=pg.mkBrush(0, 0, 0, 18), pen=pg.mkPen(None)
        )
        self.ramp_band.setZValue(-10)
        self.ramp_band.setToolTip("shaded: the inflow's start-up ramp")
        self.ramp_band.setVisible(False)
        self._add_ramp_band()

    def _add_ramp_band(self) -> None:
        # Outside the autorange: a long run's plot follows the recent steps, not t = 0.
        self.forces.addItem(self.ramp_band, ignoreBounds=True)

    def reset(self, n_obstacles: int, n_probes: int) -> None:
        self.forces.clear()
        self.probes.clear()
        self._add_ramp_band()
        self._force_curves = []
        for i in range(n_obstacles):
            color = COLORS[i % len(COLORS)]
            self._force_curves.append(
                self.forces.plot(pen=pg.mkPen(color, width=1.5), name=f"c_D {i + 1}")
            )
            self._force_curves.append(
                self.forces.plot(
                    pen=pg.mkPen(color, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine),
                    name=f"c_L {i + 1}",
                )
            )
        self._probe_curves = [
            self.probes.plot(pen=pg.mkPen(COLORS[i % len(COLORS)], width=1.5), name=f"P{i + 1}")
            for i in range(n_probes)
        ]
        self.strouhal.setText("St: –")

    def refresh(self, scenario: Scenario, probe_nodes: np.ndarray) -> None:
        """Redraw from the store: forces every step, probes at the stored frames."""
        history = self.store.history(last=PLOTTED_STEPS)
        n_obs = history.coefficients.shape[1]
        if len(self._force_curves) != 2 * n_obs or len(self._probe_curves) != len(probe_nodes):
            self.reset(n_obs, len(probe_nodes))
        ramp = scenario.inflow.ramp_time
        shaded = ramp > 0 and len(history.time) > 0
        self.ramp_band.setRegion((0.0, ramp))
        self.ramp_band.setVisible(shaded)
        for i in range(n_obs):
            self._force_curves[2 * i].setData(history.time, history.coefficients[:, i, 0])
            self._force_curves[2 * i + 1].setData(history.time, history.coefficients[:, i, 1])
        if len(probe_nodes):
            frames = self.store.frames()[-PLOTTED_FRAMES:]
            times = np.array([f.time for f in frames])
            series = np.array([np.hypot(f.u[probe_nodes], f.v[probe_nodes]) for f in frames])
            for i, curve in enumerate(self._probe_curves):
                curve.setData(times, series[:, i] if len(frames) else [])
        values = strouhal_numbers(history, scenario)
        text = ", ".join(
            f"{i + 1}: {'–' if st is None else f'{st:.3f}'}" for i, st in enumerate(values)
        )
        ramp_note = "; shaded: the inflow's start-up ramp" if shaded else ""
        self.strouhal.setText(
            f"Strouhal number St = f L / Ū  ({text or 'no obstacles'}){ramp_note}"
        )
