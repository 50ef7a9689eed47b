"""Qt-free state: sessions round-trip, old files keep loading, the frame store stays bounded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.frame_store import FrameStore
from app.state import AppState, RecentFiles, Session, ViewState
from engine.errors import ScenarioError
from engine.frame import Frame
from engine.scenario import FileShape, Scenario, default_scenario

DATA = Path(__file__).parent / "data"


def test_old_session_file_still_loads() -> None:
    session = Session.load(DATA / "session-v1.json")
    assert session.scenario.name == "saved-cylinder"
    assert session.scenario.mesh.size == 0.06
    assert session.view == ViewState(
        "vorticity", "coolwarm", False, (-20.0, 20.0), True, True, "none"
    )
    assert session.model.is_reference
    assert session.run.steps == 40
    assert session.probes == [(0.6, 0.2), (1.0, 0.25)]


def test_session_round_trip_makes_file_paths_absolute(tmp_path: Path) -> None:
    shape_dir = tmp_path / "shapes"
    scenario = default_scenario().replace(
        obstacles=(FileShape("wing.dat", (0.5, 0.2), 0.2),), base_dir=shape_dir
    )
    session = Session(scenario=scenario, probes=[(0.5, 0.1)])
    path = tmp_path / "elsewhere" / "s.json"
    path.parent.mkdir()
    session.save(path)
    loaded = Session.load(path)
    assert loaded.scenario.obstacles[0].path == str(shape_dir / "wing.dat")
    assert loaded.probes == [(0.5, 0.1)]
    assert loaded.view == session.view and loaded.run == session.run


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{not json", "session"),
        ('{"scenario": {}}', "session"),
        ('{"slipstream_session": 99}', "session"),
        ('{"slipstream_session": 1, "view": {"field": "temperature"}}', "view"),
        ('{"slipstream_session": 1, "probes": [[1, 2, 3]]}', "probes"),
        ('{"slipstream_session": 1, "scenario": {"fluid": {"viscosity": -1}}}', "fluid.viscosity"),
    ],
)
def test_broken_sessions_name_the_problem(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        Session.load(path)
    assert info.value.field == field


def test_state_emits_only_real_changes() -> None:
    state = AppState()
    seen: list[object] = []
    state.view_changed.connect(seen.append)
    state.scenario_changed.connect(seen.append)
    state.update_view(field="speed")  # already the default
    state.update_view(field="p")
    state.set_scenario(state.scenario.replace(name="other"))
    assert [type(x) for x in seen] == [ViewState, Scenario]
    assert state.view.field == "p"


def test_recent_files_newest_first_without_duplicates(tmp_path: Path) -> None:
    recent = RecentFiles(tmp_path / "cfg" / "recent.json", limit=3)
    for name in ("a", "b", "a", "c", "d"):
        recent.add(tmp_path / f"{name}.json")
    assert [Path(p).stem for p in recent.list()] == ["d", "c", "a"]
    (tmp_path / "cfg" / "recent.json").write_text("garbage")
    assert recent.list() == []


def _frame(step: int, n: int) -> Frame:
    values = np.full(n, float(step))
    return Frame(step, 0.01 * step, values, -values, values, np.ones((1, 2)), np.ones((1, 2)))


def test_frame_store_thins_to_its_budget_but_keeps_every_force() -> None:
    n = 1000
    per_frame = 3 * 4 * n  # u, v, p as float32
    store = FrameStore(budget_bytes=10 * per_frame)
    for step in range(100):
        store.append(_frame(step, n), ms_per_step=2.0)
    frames = store.frames()
    assert len(frames) <= 10
    assert store.count == 100 and store.latest().step == 99
    steps = [f.step for f in frames]
    assert steps[0] == 0 and np.all(np.diff(steps) == store.stride)  # evenly spaced, whole run
    assert store.stride >= 10
    history = store.history()
    assert history.time.shape == (100,) and history.coefficients.shape == (100, 1, 2)
    assert json.dumps(float(history.ms_per_step.mean())) == "2.0"
    store.clear()
    assert store.count == 0 and store.latest() is None and len(store) == 0
