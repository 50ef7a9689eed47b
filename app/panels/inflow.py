"""Inflow & fluid: profile, speed, angle, viscosity, density, and the live Reynolds number."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.panels.widgets import NumberBox
from app.state import AppState
from engine.scenario import Fluid, Scenario

# name -> (kinematic viscosity ν [m²/s], density ρ [kg/m³]) at about 20 °C
FLUIDS: dict[str, tuple[float, float]] = {"Air": (1.5e-5, 1.204), "Water": (1.0e-6, 998.0)}


def fluid_for_reynolds(scenario: Scenario, reynolds: float) -> Fluid:
    """The scenario's fluid with ν chosen so that Re = Ū L / ν equals ``reynolds``."""
    nu = scenario.inflow.mean_speed * scenario.reference_length / reynolds
    return replace(scenario.fluid, viscosity=nu)


class InflowPanel(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        form = QFormLayout()
        self.profile = QComboBox()
        self.profile.addItems(["parabolic", "uniform"])
        self.speed = NumberBox(1.0, 1e-6, 1e4, 0.1, "mean inflow speed Ū over the inlet [m/s]")
        self.angle = NumberBox(0.0, -44.9, 44.9, 1.0, "inflow direction, counter-clockwise [°]")
        self.ramp = NumberBox(0.5, 0.0, 100.0, 0.1, "smooth start-up time from rest [s]")
        self.viscosity = NumberBox(1e-3, 1e-12, 1e3, 1e-4, "kinematic viscosity ν [m²/s]")
        self.density = NumberBox(1.0, 1e-6, 1e5, 0.1, "density ρ [kg/m³]")
        form.addRow("Profile", self.profile)
        form.addRow("Mean speed [m/s]", self.speed)
        form.addRow("Angle [°]", self.angle)
        form.addRow("Start-up ramp [s]", self.ramp)
        form.addRow("Viscosity ν [m²/s]", self.viscosity)
        form.addRow("Density ρ [kg/m³]", self.density)
        self.reynolds = QLabel()
        self.reynolds.setObjectName("reynolds")
        form.addRow("Reynolds number", self.reynolds)

        presets = QHBoxLayout()
        for name, (nu, rho) in FLUIDS.items():
            button = QPushButton(name)
            button.setToolTip(f"ν = {nu:g} m²/s, ρ = {rho:g} kg/m³")
            button.clicked.connect(lambda _=False, nu=nu, rho=rho: self._set_fluid(Fluid(nu, rho)))
            presets.addWidget(button)
        self.re100 = QPushButton("Re = 100")
        self.re100.setToolTip("choose ν so that Re = 100 at the current speed and size")
        self.re100.clicked.connect(
            lambda: self._set_fluid(fluid_for_reynolds(self.state.scenario, 100.0))
        )
        presets.addWidget(self.re100)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(presets)
        layout.addStretch(1)

        self.profile.currentTextChanged.connect(self._commit)
        for box in (self.speed, self.angle, self.ramp, self.viscosity, self.density):
            box.valueChanged.connect(self._commit)
        state.scenario_changed.connect(self.refresh)
        self.refresh(state.scenario)

    def refresh(self, scenario: Scenario) -> None:
        self.profile.blockSignals(True)
        self.profile.setCurrentText(scenario.inflow.profile)
        self.profile.blockSignals(False)
        self.speed.set_quietly(scenario.inflow.mean_speed)
        self.angle.set_quietly(scenario.inflow.angle_deg)
        self.ramp.set_quietly(scenario.inflow.ramp_time)
        self.viscosity.set_quietly(scenario.fluid.viscosity)
        self.density.set_quietly(scenario.fluid.density)
        self.reynolds.setText(f"Re = {scenario.reynolds:.4g}")

    def _set_fluid(self, fluid: Fluid) -> None:
        self.state.set_scenario(self.state.scenario.replace(fluid=fluid))

    def _commit(self) -> None:
        scenario = self.state.scenario
        inflow = replace(
            scenario.inflow,
            profile=self.profile.currentText(),
            mean_speed=self.speed.value(),
            angle_deg=self.angle.value(),
            ramp_time=self.ramp.value(),
        )
        fluid = Fluid(self.viscosity.value(), self.density.value())
        self.state.set_scenario(scenario.replace(inflow=inflow, fluid=fluid))
