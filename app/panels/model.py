"""Model: the backend (reference solver, a shipped model, a model file), device, envelope."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import backends
from app.state import REFERENCE_BACKEND, AppState, ModelChoice

REFERENCE_LABEL = "Reference solver (ground truth)"


class ModelPanel(QWidget):
    open_model_requested = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.backend = QComboBox()
        self.backend.setObjectName("backend")
        self.device = QComboBox()
        self.device.setObjectName("device")
        open_model = QPushButton("Open model file…")
        open_model.setToolTip("a NAME.safetensors + NAME.json pair")
        open_model.clicked.connect(self.open_model_requested)
        self.card = QLabel("")
        self.card.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setObjectName("envelope_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #e65100")

        form = QFormLayout()
        form.addRow("Backend", self.backend)
        form.addRow("", open_model)
        form.addRow("Device", self.device)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.card)
        layout.addWidget(self.warning)
        layout.addStretch(1)

        self._fill_backends()
        self._fill_devices()
        self.backend.currentIndexChanged.connect(self._commit)
        self.device.currentIndexChanged.connect(self._commit)
        state.model_changed.connect(self.refresh)
        self.refresh(state.model)

    def _fill_backends(self, extra: tuple[str, ...] = ()) -> None:
        self.backend.blockSignals(True)
        self.backend.clear()
        self.backend.addItem(REFERENCE_LABEL, REFERENCE_BACKEND)
        reason = backends.missing_feature("engine.solver", "solve")
        if reason:
            self._disable(self.backend, 0, f"The reference solver is {reason}")
        for entry in backends.shipped_models():
            self.backend.addItem(entry.label, entry.name)
        for path in extra:
            if self.backend.findData(path) < 0:
                self.backend.addItem(path, path)
        self.backend.blockSignals(False)

    def _fill_devices(self) -> None:
        for i, info in enumerate(backends.devices()):
            self.device.addItem(info.name.upper() if info.name != "cpu" else "CPU", info.name)
            self.device.setItemData(i, info.detail, Qt.ItemDataRole.ToolTipRole)
            if not info.available:
                self._disable(self.device, i, info.detail)

    @staticmethod
    def _disable(combo: QComboBox, index: int, why: str) -> None:
        item = combo.model()
        assert isinstance(item, QStandardItemModel)
        item.item(index).setEnabled(False)
        combo.setItemData(index, why, Qt.ItemDataRole.ToolTipRole)

    def refresh(self, model: ModelChoice) -> None:
        if self.backend.findData(model.backend) < 0:
            extras = [self.backend.itemData(i) for i in range(self.backend.count())]
            kept = tuple(e for e in extras if e != REFERENCE_BACKEND)
            self._fill_backends((*kept, model.backend))
        for combo, value in ((self.backend, model.backend), (self.device, model.device)):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            combo.blockSignals(False)
        self.device.setEnabled(not model.is_reference)

    def show_card(self, text: str, warnings: list[str]) -> None:
        self.card.setText(text)
        self.warning.setText(
            "" if not warnings else "⚠ Outside the training envelope:\n• " + "\n• ".join(warnings)
        )

    def _commit(self) -> None:
        self.state.set_model(ModelChoice(self.backend.currentData(), self.device.currentData()))
