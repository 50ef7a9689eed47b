"""Fixtures that drive the real window under Xvfb (pytest-xvfb) on tiny meshes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.scenario import MeshSpec, Scenario, TimeSpec, default_scenario

COARSE_MESH = MeshSpec(size=0.06, obstacle_size=0.015)


def coarse(scenario: Scenario) -> Scenario:
    """The scenario on a mesh of a few hundred nodes, so the reference solver steps quickly."""
    height = scenario.tunnel.height
    size = min(COARSE_MESH.size, height / 5)
    return scenario.replace(
        mesh=replace(scenario.mesh, size=size, obstacle_size=min(COARSE_MESH.obstacle_size, size)),
        inflow=replace(scenario.inflow, ramp_time=0.05),
        time=TimeSpec(dt=0.01, steps=20),
    )


@pytest.fixture
def coarse_scenario() -> Scenario:
    return coarse(default_scenario())


@pytest.fixture
def messages(monkeypatch) -> list[tuple[str, str]]:
    """Every QMessageBox.warning the app shows, recorded instead of blocking the test."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []

    def record(parent, title, text, *args, **kwargs):
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", record)
    return shown


@pytest.fixture
def window(qtbot, tmp_path: Path, messages, coarse_scenario):
    """The main window on the coarse DFG cylinder with the reference solver, meshed and shown.

    On teardown it checks that no run or meshing thread is left behind.
    """
    from app.main_window import MainWindow
    from app.state import RecentFiles, Session
    from app.workers import RunWorker

    win = MainWindow(Session(scenario=coarse_scenario), recent=RecentFiles(tmp_path / "recent"))
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitUntil(lambda: win.mesh_is_current, timeout=30000)
    yield win
    assert win.wait_for_threads(20000)
    assert not [w for w in win.findChildren(RunWorker) if w.isRunning()]
    win.close()
