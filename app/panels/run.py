"""Run: Run/Pause, Step, Reset, the number of steps and the playback speed."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.state import AppState, RunSettings

# label -> most steps per second (0: as fast as the backend goes)
PLAYBACK_RATES: dict[str, float] = {
    "As fast as possible": 0.0,
    "50 steps/s": 50.0,
    "25 steps/s": 25.0,
    "10 steps/s": 10.0,
    "2 steps/s": 2.0,
}


class RunPanel(QWidget):
    run_pause_clicked = Signal()
    step_clicked = Signal()
    reset_clicked = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("run or pause (Space)")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("advance one step (S)")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("stop and return to the fluid at rest (R)")
        self.run_button.clicked.connect(self.run_pause_clicked)
        self.step_button.clicked.connect(self.step_clicked)
        self.reset_button.clicked.connect(self.reset_clicked)
        buttons = QHBoxLayout()
        for b in (self.run_button, self.step_button, self.reset_button):
            buttons.addWidget(b)

        self.steps = QSpinBox()
        self.steps.setRange(1, 10_000_000)
        self.steps.setKeyboardTracking(False)
        self.playback = QComboBox()
        for label, rate in PLAYBACK_RATES.items():
            self.playback.addItem(label, rate)
        self.status = QLabel("idle")
        self.status.setObjectName("run_status")
        form = QFormLayout()
        form.addRow("Steps", self.steps)
        form.addRow("Playback", self.playback)
        form.addRow("State", self.status)

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addStretch(1)

        self.steps.valueChanged.connect(lambda n: state.update_run(steps=n))
        self.playback.currentIndexChanged.connect(
            lambda i: state.update_run(playback_rate=float(self.playback.itemData(i)))
        )
        state.run_changed.connect(self.refresh)
        self.refresh(state.run)

    def refresh(self, run: RunSettings) -> None:
        self.steps.blockSignals(True)
        self.steps.setValue(run.steps)
        self.steps.blockSignals(False)
        index = self.playback.findData(run.playback_rate)
        self.playback.blockSignals(True)
        if index < 0:  # a rate from a session file that is not in the list
            self.playback.addItem(f"{run.playback_rate:g} steps/s", run.playback_rate)
            index = self.playback.count() - 1
        self.playback.setCurrentIndex(index)
        self.playback.blockSignals(False)

    def show_run_state(self, state: str) -> None:
        """Label the Run button for what pressing it will do, and show the worker's state."""
        self.status.setText(state)
        self.run_button.setText("Pause" if state == "running" else "Run")
