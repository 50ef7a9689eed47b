"""Dataset folders: manifest contents, stable splits, and refresh while files are being written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data.dataset import MANIFEST_NAME, SPLITS, open_dataset, split_of
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.scenario import Circle, Inflow, Naca, Scenario


def _write(path, scenario: Scenario, num_steps: int = 3, dt: float = 0.01) -> None:
    mesh = TunnelMesh(
        points=np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
        cells=np.array([[0, 1, 2], [0, 2, 3]]),
        node_type=np.zeros(4, dtype=np.int64),
    )
    n_obs = len(scenario.obstacles)
    frames = [
        Frame(
            k,
            k * dt,
            np.full(4, k),
            np.zeros(4),
            np.zeros(4),
            np.zeros((n_obs, 2)),
            np.zeros((n_obs, 2)),
        )
        for k in range(num_steps)
    ]
    Trajectory.from_frames(mesh, frames, scenario.to_dict()).save(path)


def test_manifest_records_ranges_and_splits(tmp_path):
    slow = Scenario(obstacles=(Circle((0.2, 0.2), 0.05),))
    fast = Scenario(
        obstacles=(Circle((0.2, 0.2), 0.05), Naca("0012", 0.1, (0.6, 0.2))),
    )
    fast = fast.replace(inflow=Inflow(mean_speed=2.0))
    _write(tmp_path / "a.h5", slow)
    _write(tmp_path / "b.h5", fast, num_steps=5, dt=0.02)

    ds = open_dataset(tmp_path, seed=7)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest == ds.manifest
    assert manifest["count"] == 2
    assert manifest["seed"] == 7
    ranges = manifest["ranges"]
    assert ranges["reynolds"] == pytest.approx([100.0, 200.0])
    assert ranges["mean_speed"] == pytest.approx([1.0, 2.0])
    assert ranges["shapes"] == ["circle", "naca"]
    assert ranges["num_nodes"] == [4, 4]
    assert ranges["num_steps"] == [3, 5]
    assert ranges["dt"] == pytest.approx([0.01, 0.02])
    assert sorted(n for names in manifest["splits"].values() for n in names) == ["a.h5", "b.h5"]
    for split in SPLITS:
        assert [p.name for p in ds.files(split)] == manifest["splits"][split]


def test_refresh_picks_up_new_files_and_keeps_splits_stable(tmp_path):
    scenario = Scenario(obstacles=(Circle((0.2, 0.2), 0.05),))
    for i in range(5):
        _write(tmp_path / f"traj-{i:03d}.h5", scenario)
    (tmp_path / "traj-999.h5.partial").write_bytes(b"half written")
    ds = open_dataset(tmp_path, seed=3)
    before = {s: [p.name for p in ds.files(s)] for s in SPLITS}
    assert len(ds) == 5

    for i in range(5, 40):
        _write(tmp_path / f"traj-{i:03d}.h5", scenario)
    assert ds.refresh() == 35
    assert ds.refresh() == 0
    after = {s: [p.name for p in ds.files(s)] for s in SPLITS}
    for s in SPLITS:
        assert set(before[s]) <= set(after[s])
    assert all(after[s] for s in SPLITS), "40 files should populate every split"
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["count"] == 40

    reopened = open_dataset(tmp_path)  # the manifest's seed is reused
    assert reopened.seed == 3
    assert {s: [p.name for p in reopened.files(s)] for s in SPLITS} == after


def test_split_of_depends_on_seed_and_is_roughly_80_10_10():
    names = [f"traj-{i:05d}.h5" for i in range(5000)]
    counts = {s: 0 for s in SPLITS}
    for name in names:
        counts[split_of(name, 0)] += 1
    assert counts["train"] == pytest.approx(4000, rel=0.05)
    assert counts["valid"] == pytest.approx(500, rel=0.2)
    assert [split_of(n, 0) for n in names[:50]] != [split_of(n, 1) for n in names[:50]]


def test_errors_are_user_facing(tmp_path):
    with pytest.raises(DataFormatError, match="no such dataset"):
        open_dataset(tmp_path / "missing")
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(DataFormatError, match="unreadable manifest"):
        open_dataset(tmp_path)
    ds = open_dataset(tmp_path / "new", create=True)
    with pytest.raises(DataFormatError, match="unknown split"):
        ds.files("training")  # type: ignore[arg-type]
