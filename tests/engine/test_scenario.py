"""Scenario JSON contract: round trip, Reynolds number, validation errors that name their field."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from engine.errors import ScenarioError
from engine.scenario import Circle, FileShape, Naca, Scenario, default_scenario

ROOT = Path(__file__).resolve().parents[2]
GEOMETRIES = ROOT / "assets" / "geometries"

# The issue's example, verbatim: its `file` obstacle (centre x 0.5, scale 0.2) lies over the
# NACA 2412 (centre x 0.6, chord 0.2), so it parses and round-trips but fails validation.
ISSUE_EXAMPLE = {
    "tunnel": {"length": 2.2, "height": 0.41, "walls": "no-slip"},
    "obstacles": [
        {"shape": "circle", "center": [0.2, 0.2], "radius": 0.05},
        {"shape": "naca", "code": "2412", "chord": 0.2, "center": [0.6, 0.2], "angle_deg": 8},
        {"shape": "ellipse", "center": [1.0, 0.2], "axes": [0.08, 0.03], "angle_deg": 20},
        {"shape": "rectangle", "center": [1.4, 0.2], "size": [0.1, 0.05], "angle_deg": 45},
        {"shape": "polygon", "points": [[1.7, 0.2], [1.8, 0.25], [1.8, 0.15]]},
        {
            "shape": "file",
            "path": "profile.dat",
            "center": [0.5, 0.2],
            "scale": 0.2,
            "angle_deg": 0,
        },
    ],
    "inflow": {"profile": "parabolic", "mean_speed": 1.0},
    "fluid": {"viscosity": 0.001, "density": 1.0},
    "mesh": {"size": 0.02, "obstacle_size": 0.006},
    "time": {"dt": 0.01, "steps": 600},
}


@pytest.fixture
def example_file(tmp_path: Path) -> Path:
    shutil.copy(GEOMETRIES / "naca4412-blunt.dat", tmp_path / "profile.dat")
    path = tmp_path / "example.json"
    path.write_text(json.dumps(ISSUE_EXAMPLE))
    return path


def _with(change: dict) -> dict:
    """The DFG scenario's JSON with ``change`` merged into its sections."""
    data = default_scenario().to_dict()
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] |= value
        else:
            data[key] = value
    return data


def _field_of(data: dict) -> str:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data).validate()
    assert str(info.value).startswith(info.value.field)
    return info.value.field


def test_issue_example_round_trips_through_json(example_file: Path, tmp_path: Path) -> None:
    scenario = Scenario.load(example_file)
    assert [type(o).__name__ for o in scenario.obstacles] == [
        "Circle",
        "Naca",
        "Ellipse",
        "Rectangle",
        "Polygon",
        "FileShape",
    ]
    assert scenario.obstacles[1] == Naca("2412", 0.2, (0.6, 0.2), 8.0)
    assert scenario.resolve("profile.dat") == tmp_path / "profile.dat"
    copy_path = tmp_path / "copy.json"
    scenario.save(copy_path)
    again = Scenario.load(copy_path)
    assert again == scenario
    assert json.loads(copy_path.read_text())["obstacles"][5]["path"] == "profile.dat"


def test_issue_example_reports_the_file_shape_overlapping_the_naca(example_file: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.load(example_file).validate()
    assert info.value.field == "obstacles[5]"
    assert "overlaps obstacles[1]" in str(info.value)


def test_issue_example_without_the_overlap_is_valid(example_file: Path) -> None:
    scenario = Scenario.load(example_file)
    moved = FileShape("profile.dat", (0.5, 0.2), 0.2, 0.0)
    assert scenario.obstacles[5] == moved
    scenario.replace(obstacles=scenario.obstacles[:5]).validate()


def test_reynolds_number_of_the_dfg_preset_is_100() -> None:
    scenario = Scenario.load(ROOT / "assets" / "scenarios" / "dfg-2d-2.json")
    assert scenario.reynolds == pytest.approx(100.0)
    assert scenario.reference_length == pytest.approx(0.1)


def test_default_scenario_is_the_dfg_preset() -> None:
    preset = Scenario.load(ROOT / "assets" / "scenarios" / "dfg-2d-2.json")
    assert preset == default_scenario()
    assert preset.obstacles == (Circle((0.2, 0.2), 0.05),)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fluid": {"viscosity": -1e-3}}, "fluid.viscosity"),
        ({"fluid": {"density": 0}}, "fluid.density"),
        ({"inflow": {"profile": "plug"}}, "inflow.profile"),
        ({"inflow": {"mean_speed": "fast"}}, "inflow.mean_speed"),
        ({"tunnel": {"walls": "sticky"}}, "tunnel.walls"),
        ({"tunnel": {"height": 0}}, "tunnel.height"),
        ({"time": {"steps": 0}}, "time.steps"),
        ({"mesh": {"obstacle_size": 0.05}}, "mesh.obstacle_size"),
        ({"obstacles": [{"shape": "star", "center": [0.5, 0.2]}]}, "obstacles[0].shape"),
        ({"obstacles": [{"shape": "circle", "center": [0.5, 0.2]}]}, "obstacles[0].radius"),
        (
            {"obstacles": [{"shape": "circle", "center": [0.5], "radius": 0.05}]},
            "obstacles[0].center",
        ),
        (
            {"obstacles": [{"shape": "naca", "code": "24120", "chord": 0.2, "center": [0.5, 0.2]}]},
            "obstacles[0].code",
        ),
        (
            {"obstacles": [{"shape": "naca", "code": "2400", "chord": 0.2, "center": [0.5, 0.2]}]},
            "obstacles[0].code",
        ),
        (
            {"obstacles": [{"shape": "polygon", "points": [[0.5, 0.2], [0.6, 0.2]]}]},
            "obstacles[0].points",
        ),
    ],
)
def test_field_errors_name_the_field(change: dict, field: str) -> None:
    assert _field_of(_with(change)) == field


def test_missing_field_is_named() -> None:
    data = _with({})
    del data["obstacles"][0]["center"]
    assert _field_of(data) == "obstacles[0].center"


@pytest.mark.parametrize(
    ("obstacles", "field", "words"),
    [
        ([{"shape": "circle", "center": [2.19, 0.2], "radius": 0.05}], "obstacles[0]", "outside"),
        ([{"shape": "circle", "center": [0.2, 0.054], "radius": 0.05}], "obstacles[0]", "boundary"),
        (
            [
                {"shape": "circle", "center": [0.2, 0.2], "radius": 0.05},
                {"shape": "circle", "center": [0.28, 0.2], "radius": 0.05},
            ],
            "obstacles[1]",
            "overlaps obstacles[0]",
        ),
        (
            [
                {"shape": "circle", "center": [0.5, 0.2], "radius": 0.1},
                {"shape": "circle", "center": [0.5, 0.2], "radius": 0.03},
            ],
            "obstacles[1]",
            "inside",
        ),
        (
            [
                {"shape": "circle", "center": [0.2, 0.2], "radius": 0.05},
                {"shape": "circle", "center": [0.305, 0.2], "radius": 0.05},
            ],
            "obstacles[1]",
            "from obstacles[0]",
        ),
        (
            [{"shape": "polygon", "points": [[0.4, 0.1], [0.6, 0.3], [0.6, 0.1], [0.4, 0.3]]}],
            "obstacles[0]",
            "crosses itself",
        ),
        (
            [{"shape": "rectangle", "center": [0.5, 0.2], "size": [0.2, 0.003]}],
            "obstacles[0]",
            "thick",
        ),
        (
            [{"shape": "naca", "code": "0006", "chord": 0.05, "center": [0.5, 0.2]}],
            "obstacles[0]",
            "thick",
        ),
    ],
)
def test_geometry_errors_name_the_obstacle(obstacles: list, field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(_with({"obstacles": obstacles})).validate()
    assert info.value.field == field
    assert words in str(info.value)


def test_missing_shape_file_names_the_obstacle_path_and_file(tmp_path: Path) -> None:
    data = _with(
        {
            "obstacles": [
                {"shape": "file", "path": "nowhere.dat", "center": [0.5, 0.2], "scale": 0.2}
            ]
        }
    )
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data, base_dir=tmp_path).validate()
    assert info.value.field == "obstacles[0].path"
    assert "nowhere.dat" in str(info.value)


def test_broken_shape_file_names_the_obstacle_and_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.dat"
    broken.write_text("My airfoil\n1.0 0.0\n0.5 0.06\n0.0 zero\n0.5 -0.05\n")
    data = _with(
        {"obstacles": [{"shape": "file", "path": "broken.dat", "center": [0.5, 0.2], "scale": 0.2}]}
    )
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data, base_dir=tmp_path).validate()
    assert info.value.field == "obstacles[0].path"
    assert "broken.dat, line 4" in str(info.value)


def test_unknown_keys_are_rejected_with_their_section() -> None:
    data = copy.deepcopy(_with({}))
    data["fluid"]["viscosty"] = 1e-3
    assert _field_of(data) == "fluid"
