"""View: which field, colour map and range, edges, outlines, overlays, camera and probes."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.panels.widgets import NumberBox
from app.state import FIELDS, OVERLAYS, AppState, ViewState

COLORMAPS = ("viridis", "plasma", "coolwarm", "RdBu_r", "turbo", "gray")


class ViewPanel(QWidget):
    fit_clicked = Signal()
    probe_mode_toggled = Signal(bool)
    clear_probes_clicked = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.field = QComboBox()
        self.field.setObjectName("field")
        for name, (label, unit) in FIELDS.items():
            self.field.addItem(f"{label} [{unit}]", name)
        self.cmap = QComboBox()
        self.cmap.addItems(list(COLORMAPS))
        self.auto_range = QCheckBox("Automatic range")
        self.range_min = NumberBox(0.0, -1e9, 1e9, 0.1, "lower end of the colour range")
        self.range_max = NumberBox(1.5, -1e9, 1e9, 0.1, "upper end of the colour range")
        self.edges = QCheckBox("Mesh edges")
        self.outlines = QCheckBox("Obstacle outlines")
        self.overlay = QComboBox()
        self.overlay.addItems(list(OVERLAYS))
        fit = QPushButton("Fit view")
        fit.clicked.connect(self.fit_clicked)
        self.probe_mode = QPushButton("Place probes")
        self.probe_mode.setCheckable(True)
        self.probe_mode.setToolTip("while pressed, a left click in the viewport adds a probe")
        self.probe_mode.toggled.connect(self.probe_mode_toggled)
        clear = QPushButton("Clear probes")
        clear.clicked.connect(self.clear_probes_clicked)

        form = QFormLayout()
        form.addRow("Field", self.field)
        form.addRow("Colour map", self.cmap)
        form.addRow(self.auto_range)
        span = QHBoxLayout()
        span.addWidget(self.range_min)
        span.addWidget(self.range_max)
        form.addRow("Range", span)
        form.addRow(self.edges)
        form.addRow(self.outlines)
        form.addRow("Overlay", self.overlay)
        buttons = QHBoxLayout()
        for b in (fit, self.probe_mode, clear):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.field.currentIndexChanged.connect(self._commit)
        self.cmap.currentTextChanged.connect(self._commit)
        self.overlay.currentTextChanged.connect(self._commit)
        for box in (self.auto_range, self.edges, self.outlines):
            box.toggled.connect(self._commit)
        for number in (self.range_min, self.range_max):
            number.valueChanged.connect(self._commit)
        state.view_changed.connect(self.refresh)
        self.refresh(state.view)

    def refresh(self, view: ViewState) -> None:
        widgets = (self.field, self.cmap, self.overlay, self.auto_range, self.edges, self.outlines)
        for w in widgets:
            w.blockSignals(True)
        self.field.setCurrentIndex(self.field.findData(view.field))
        if self.cmap.findText(view.cmap) < 0:
            self.cmap.addItem(view.cmap)
        self.cmap.setCurrentText(view.cmap)
        self.overlay.setCurrentText(view.overlay)
        self.auto_range.setChecked(view.auto_range)
        self.edges.setChecked(view.show_edges)
        self.outlines.setChecked(view.show_outlines)
        for w in widgets:
            w.blockSignals(False)
        self.range_min.set_quietly(view.fixed_range[0])
        self.range_max.set_quietly(view.fixed_range[1])
        self.range_min.setEnabled(not view.auto_range)
        self.range_max.setEnabled(not view.auto_range)

    def _commit(self) -> None:
        lo, hi = self.range_min.value(), self.range_max.value()
        if hi <= lo:
            hi = lo + 1e-6
        self.state.update_view(
            field=self.field.currentData(),
            cmap=self.cmap.currentText(),
            auto_range=self.auto_range.isChecked(),
            fixed_range=(lo, hi),
            show_edges=self.edges.isChecked(),
            show_outlines=self.outlines.isChecked(),
            overlay=self.overlay.currentText(),
        )
