"""The real window under Xvfb: presets, runs, fields, pause/step/reset, export, sessions, errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import meshio
import numpy as np
import pytest

from app.export import ExportOptions
from app.state import FIELDS
from engine.scenario import Scenario
from tests.app.conftest import coarse

pytestmark = pytest.mark.gui

PRESETS = sorted((Path(__file__).parents[2] / "assets" / "scenarios").glob("*.json"))
RUN_TIMEOUT_MS = 120_000


def run_to_end(qtbot, window, steps: int) -> None:
    window.state.update_run(steps=steps)
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.run_pause()
    assert blocker.args == ["finished"], window.errors


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_each_preset_meshes_and_runs_20_steps(qtbot, window, messages, preset: Path) -> None:
    assert window.open_path(preset), messages
    qtbot.waitUntil(lambda: window.mesh_is_current, timeout=30000)
    scenario = Scenario.load(preset)
    assert window.mesh.num_obstacles == len(scenario.obstacles)
    window.state.set_scenario(coarse(window.state.scenario))  # keep the run itself quick
    qtbot.waitUntil(lambda: window.mesh_is_current, timeout=30000)
    run_to_end(qtbot, window, 20)
    assert window.store.count == 21  # frame 0 (rest) and 20 steps
    assert window.store.history().coefficients.shape == (21, len(scenario.obstacles), 2)
    assert np.abs(window.viewport.grid.point_data["display"]).max() > 0.1
    assert not messages


def test_run_then_switch_every_field(qtbot, window) -> None:
    run_to_end(qtbot, window, 20)
    frame = window.store.latest()
    assert frame.step == 20
    display = window.viewport.grid.point_data["display"]
    np.testing.assert_allclose(display, np.hypot(frame.u, frame.v), rtol=1e-5, atol=1e-6)
    for field in FIELDS:
        window.view_panel.field.setCurrentIndex(window.view_panel.field.findData(field))
        assert window.state.view.field == field
        expected = window.viewport.field_values(frame)
        np.testing.assert_allclose(display, expected, rtol=1e-5, atol=1e-5)
        bar = next(iter(window.viewport.plotter.scalar_bars.values()))
        assert FIELDS[field][1] in bar.GetTitle()
    assert np.abs(window.viewport.field_values(frame)).max() > 0  # vorticity is not all zero


def test_pause_step_reset(qtbot, window) -> None:
    window.step()
    window.step()
    qtbot.waitUntil(lambda: window.store.count == 2, timeout=RUN_TIMEOUT_MS)
    qtbot.wait(300)
    assert window.store.count == 2 and window.worker.paused  # paused: no frame without a step
    window.run_pause()  # resume
    qtbot.waitUntil(lambda: window.store.count >= 4, timeout=RUN_TIMEOUT_MS)
    window.run_pause()  # pause
    qtbot.wait(100)
    paused_at = window.store.count
    qtbot.wait(500)
    assert window.store.count <= paused_at + 1  # at most the step in flight when paused
    window.reset()
    assert window.store.count == 0 and window.viewport.frame is None
    assert not np.any(window.viewport.grid.point_data["display"])
    assert window.run_panel.run_button.text() == "Run"


def test_timeline_scrubs_stored_frames(qtbot, window) -> None:
    run_to_end(qtbot, window, 10)
    window.timeline.setValue(3)
    assert not window.live_box.isChecked()
    assert window.viewport.frame.step == window.store[3].step
    window.live_box.setChecked(True)
    assert window.viewport.frame.step == 10


def test_export_vtu_pvd_csv_read_back(qtbot, window, tmp_path: Path) -> None:
    window.state.add_probe(0.6, 0.2)
    run_to_end(qtbot, window, 5)
    written = window.export(ExportOptions(tmp_path / "out", xdmf=True, movies=("gif", "mp4")))
    names = {p.name for p in written}
    assert {
        "run.pvd",
        "run.xdmf",
        "forces.csv",
        "probes.csv",
        "frame.png",
        "run.gif",
        "run.mp4",
    } <= names
    pvd = ET.parse(tmp_path / "out" / "run.pvd").getroot()
    files = [d.get("file") for d in pvd.iter("DataSet")]
    assert len(files) == 6
    last = meshio.read(tmp_path / "out" / files[-1])
    assert last.points.shape[0] == window.mesh.num_nodes
    np.testing.assert_allclose(last.point_data["u"], window.store.latest().u, rtol=1e-5)
    forces = np.loadtxt(tmp_path / "out" / "forces.csv", delimiter=",", skiprows=1)
    assert forces.shape == (6, 5)
    probes = (tmp_path / "out" / "probes.csv").read_text().splitlines()
    assert len(probes) == 7 and probes[0].startswith("time,u_1(0.6;0.2)")


def test_save_and_reopen_session(qtbot, window, tmp_path: Path) -> None:
    window.state.update_view(field="p", cmap="coolwarm", show_edges=True)
    window.state.add_probe(1.0, 0.2)
    path = tmp_path / "session.json"
    window.save_session(path)
    assert json.loads(path.read_text())["view"]["field"] == "p"
    window.state.update_view(field="u")
    window.state.clear_probes()
    assert window.open_path(path)
    assert window.state.view.field == "p" and window.state.view.cmap == "coolwarm"
    assert window.state.probes == [(1.0, 0.2)]
    assert window.view_panel.field.currentData() == "p"
    assert window.view_panel.edges.isChecked()
    assert str(path.resolve()) in window.recent.list()


def test_broken_files_show_a_message(qtbot, window, messages, tmp_path: Path) -> None:
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"tunnel": {"length": -1}}')
    bad_dat = tmp_path / "broken.dat"
    bad_dat.write_text("not an airfoil\n1 2 3 4\n")
    odd = tmp_path / "notes.docx"
    odd.write_text("?")
    for path in (bad_json, bad_dat, odd):
        assert not window.open_path(path)
    assert [title for title, _ in messages] == [
        f"Cannot open {p.name}" for p in (bad_json, bad_dat, odd)
    ]
    assert "tunnel.length" in messages[0][1]
    assert window.state.scenario.obstacles  # the scenario is untouched


def test_invalid_edit_is_refused_in_the_panel(qtbot, window) -> None:
    before = window.state.scenario
    window.geometry_panel.mesh_size.setValue(5.0)  # coarser than a quarter of the tunnel
    assert window.state.scenario == before
    assert "mesh.size" in window.geometry_panel.error.text()


def test_slider_drags_merge_into_one_remesh(qtbot, window) -> None:
    jobs = window.mesher.jobs_run
    for size in np.linspace(0.07, 0.08, 15):
        window.geometry_panel.mesh_size.setValue(float(size))
    qtbot.waitUntil(lambda: window.mesh_is_current, timeout=30000)
    assert window.mesher.jobs_run - jobs <= 2
    assert window.state.scenario.mesh.size == pytest.approx(0.08)


def test_cancel_midway_leaves_no_thread(qtbot, window) -> None:
    window.state.update_run(steps=100_000)
    window.run_pause()
    qtbot.waitUntil(lambda: window.store.count >= 2, timeout=RUN_TIMEOUT_MS)
    worker = window.worker
    window.reset()
    assert worker.wait(30_000)
    assert worker.outcome == "cancelled"
    assert window.store.count == 0


def test_diverging_run_keeps_its_frames_and_says_what_to_try(qtbot, window, messages) -> None:
    from engine.errors import DivergenceError
    from engine.rollout.rollout import initial_frame

    rest = initial_frame(window.mesh, window.state.scenario)

    def diverging(cancel):
        for step in range(3):
            yield dataclasses.replace(rest, step=step, time=0.01 * step)
        raise DivergenceError(3, "speed 40 exceeds 20× the mean inflow speed")

    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start_run(make_source=diverging)
    assert blocker.args == ["failed"]
    [(title, text)] = messages
    assert title == "The run stopped"
    assert "rollout diverged at step 3" in text
    assert "frames before step 3 are kept" in text
    assert window.store.count == 3  # what was computed before the blow-up is still there
    assert window.timeline.isEnabled()


def test_probe_click_adds_probe_and_series(qtbot, window) -> None:
    window.view_panel.probe_mode.setChecked(True)
    window.viewport._on_click((0.8, 0.2, 0.0))
    assert window.state.probes == [(0.8, 0.2)]
    run_to_end(qtbot, window, 3)
    window._refresh_plots()
    x, y = window.plots._probe_curves[0].getData()
    assert len(x) == 4 and y[-1] > 0


def test_force_plot_shades_the_inflow_ramp(qtbot, window) -> None:
    """Learned forces are least right while the inflow ramps up; the plot shows which part."""
    run_to_end(qtbot, window, 3)
    window._refresh_plots()
    band = window.plots.ramp_band
    ramp = window.state.scenario.inflow.ramp_time
    assert ramp > 0 and band.getRegion() == pytest.approx((0.0, ramp))
    assert band.isVisible() and band in window.plots.forces.getPlotItem().items
    assert "start-up ramp" in window.plots.strouhal.text()
    scenario = window.state.scenario
    no_ramp = dataclasses.replace(scenario.inflow, ramp_time=0.0)
    impulsive = dataclasses.replace(scenario, inflow=no_ramp)
    window.plots.refresh(impulsive, np.array([], dtype=int))  # the same 4 frames, no ramp
    assert not band.isVisible() and "start-up ramp" not in window.plots.strouhal.text()


def test_scripted_mode_screenshot_and_export(tmp_path: Path, coarse_scenario) -> None:
    """The command line a demo or the docs use, run as its own process (as users run it)."""
    scenario = tmp_path / "coarse.json"
    coarse_scenario.save(scenario)
    shot, out = tmp_path / "shot.png", tmp_path / "export"
    args = [
        "--scenario",
        str(scenario),
        "--model",
        "reference",
        "--steps",
        "3",
        "--screenshot",
        str(shot),
        "--export",
        str(out),
        "--quit",
        "--size",
        "640x400",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 1000
    assert (out / "run.pvd").exists() and (out / "forces.csv").exists()
    assert len(np.loadtxt(out / "forces.csv", delimiter=",", skiprows=1)) == 4


def test_scripted_mode_reports_a_broken_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"fluid": {"viscosity": -1}}')
    result = subprocess.run(
        [sys.executable, "-m", "app", "--scenario", str(bad), "--quit"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "fluid.viscosity" in result.stderr


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """An untrained two-block MeshGraphNet saved as a model file pair, trained (it claims) on
    Re 10–50 so the DFG cylinder at Re 100 lies outside its envelope."""
    from engine.models.card import TrainingEnvelope
    from engine.models.simulator import Simulator, SimulatorConfig

    sim = Simulator.from_config(
        SimulatorConfig(arguments={"latent": 16, "num_blocks": 2}, name="tiny")
    )
    sim.card.envelope = TrainingEnvelope(reynolds=(10.0, 50.0))
    sim.save(tmp_path / "tiny")
    return tmp_path / "tiny"


def test_learned_model_backend_runs_and_warns(qtbot, window, messages, tiny_model) -> None:
    from app.state import ModelChoice

    window.state.set_model(ModelChoice(str(tiny_model), "cpu"))
    qtbot.waitUntil(
        lambda: "Reynolds number 100" in window.model_panel.warning.text(), timeout=30000
    )
    assert "tiny: meshgraphnet" in window.model_panel.card.text()
    run_to_end(qtbot, window, 2)
    assert window.store.count == 3
    assert "tiny on CPU" in window.status_labels["device"].text()
    assert not messages


def test_missing_gpu_is_a_message(qtbot, window, messages, tiny_model) -> None:
    import torch

    from app.state import ModelChoice

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    window.state.set_model(ModelChoice(str(tiny_model), "cuda"))
    qtbot.waitUntil(lambda: bool(messages), timeout=30000)
    assert "device 'cuda' is not available" in messages[0][1]


def test_drop_a_shape_file_adds_an_obstacle(qtbot, window) -> None:
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    airfoil = Path(__file__).parents[2] / "assets" / "geometries" / "s1223.dat"
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(airfoil))])
    event = QDropEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert window.state.scenario.obstacles[-1].shape == "file"
    qtbot.waitUntil(lambda: window.mesh_is_current, timeout=30000)
    assert window.mesh.num_obstacles == 2


def test_keyboard_shortcuts(qtbot, window) -> None:
    from PySide6.QtGui import QAction

    actions = {a.shortcut().toString(): a for a in window.findChildren(QAction)}
    assert {"Space", "S", "R", "Ctrl+E"} <= set(actions)
    actions["S"].trigger()
    qtbot.waitUntil(lambda: window.store.count == 1, timeout=RUN_TIMEOUT_MS)
    assert window.worker.paused
    actions["Space"].trigger()
    qtbot.waitUntil(lambda: window.store.count >= 2, timeout=RUN_TIMEOUT_MS)
    actions["R"].trigger()
    assert window.store.count == 0 and window.worker is None


def test_open_a_mesh_file_uses_it_as_is(qtbot, window, messages, tmp_path: Path) -> None:
    from engine.geometry.meshfile import write_mesh

    path = tmp_path / "tunnel.vtu"
    write_mesh(window.mesh, path)
    nodes = window.mesh.num_nodes
    assert window.open_path(path), messages
    assert window.state.scenario.mesh.file == str(path.resolve())
    qtbot.waitUntil(lambda: window.mesh_is_current, timeout=30000)
    assert window.mesh.num_nodes == nodes and window.mesh.num_obstacles == 1
    run_to_end(qtbot, window, 2)
    assert window.store.latest().coefficients.shape == (1, 2)
