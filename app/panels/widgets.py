"""Small input widgets shared by the panels."""

from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget


class NumberBox(QDoubleSpinBox):
    """A spin box that shows and accepts numbers in %g form, so 1e-05 and 1000 both fit.

    Keyboard tracking is off: the value is committed on Enter or focus loss, so typing "0.05"
    does not remesh for "0", "0.", "0.0" on the way.
    """

    def __init__(
        self,
        value: float,
        minimum: float,
        maximum: float,
        step: float,
        tooltip: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setDecimals(10)
        self.setRange(minimum, maximum)
        self.setSingleStep(step)
        self.setKeyboardTracking(False)
        self.setToolTip(tooltip)
        self.setValue(value)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        return float(text)

    def validate(self, text: str, pos: int) -> object:
        try:
            float(text)
        except ValueError:
            return (QValidator.State.Intermediate, text, pos)
        return (QValidator.State.Acceptable, text, pos)

    def set_quietly(self, value: float) -> None:
        """Show ``value`` without emitting valueChanged (refreshing from state, not user input)."""
        self.blockSignals(True)
        self.setValue(value)
        self.blockSignals(False)
