"""Obstacle outlines: orientation, placement, NACA formulas, rotation sense, file shapes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.geometry import outline
from engine.geometry.polygon import (
    contains,
    min_width,
    outline_distance,
    resample,
    self_intersection,
    signed_area,
)
from engine.geometry.shapes import naca4
from engine.scenario import (
    Blob,
    Circle,
    Ellipse,
    FileShape,
    Naca,
    Obstacle,
    Polygon,
    Rectangle,
    Scenario,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Scenario()

SHAPES = [
    Circle((0.5, 0.2), 0.05),
    Ellipse((0.5, 0.2), (0.08, 0.03), 20.0),
    Rectangle((0.5, 0.2), (0.1, 0.05), 45.0),
    Naca("2412", 0.2, (0.5, 0.2), -10.0),
    Polygon(((0.5, 0.2), (0.5, 0.25), (0.6, 0.2))),  # clockwise as given
    Blob((0.5, 0.2), 0.05, ((0.1, 0.05), (0.0, 0.08)), 30.0),
]


@pytest.mark.parametrize("obstacle", SHAPES, ids=lambda o: o.shape)
def test_outlines_are_simple_counter_clockwise_and_open(obstacle: Obstacle) -> None:
    pts = outline(obstacle, SCENARIO)
    assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 3
    assert signed_area(pts) > 0
    assert not np.allclose(pts[0], pts[-1])
    assert self_intersection(pts) is None


def test_circle_points_lie_on_the_circle() -> None:
    pts = outline(Circle((0.2, 0.2), 0.05), SCENARIO)
    np.testing.assert_allclose(np.hypot(pts[:, 0] - 0.2, pts[:, 1] - 0.2), 0.05)


def test_rectangle_at_45_degrees_is_a_diamond() -> None:
    pts = outline(Rectangle((1.0, 0.2), (0.1, 0.1), 45.0), SCENARIO)
    half_diagonal = 0.1 / np.sqrt(2)
    np.testing.assert_allclose(pts.max(axis=0) - [1.0, 0.2], [half_diagonal, half_diagonal])
    assert signed_area(pts) == pytest.approx(0.01)


def test_naca_0012_has_12_percent_thickness_and_closed_trailing_edge() -> None:
    unit = naca4("0012")
    assert unit[:, 0].min() == pytest.approx(0.0) and unit[:, 0].max() == pytest.approx(1.0)
    assert 2 * unit[:, 1].max() == pytest.approx(0.12, abs=2e-3)
    np.testing.assert_allclose(unit[0], [1.0, 0.0], atol=1e-12)  # a single trailing-edge point
    assert signed_area(unit) > 0


def test_naca_2412_camber_lifts_the_section() -> None:
    unit = naca4("2412")
    assert unit[:, 1].max() > -unit[:, 1].min()  # more above the chord than below


def test_negative_angle_is_a_positive_angle_of_attack() -> None:
    """angle_deg −5 (clockwise): the leading edge rises above the trailing edge."""
    pts = outline(Naca("0012", 0.2, (0.5, 0.2), -5.0), SCENARIO)
    le, te = pts[np.argmin(pts[:, 0])], pts[np.argmax(pts[:, 0])]
    assert le[1] > te[1]
    assert np.degrees(np.arctan2(le[1] - te[1], te[0] - le[0])) == pytest.approx(5.0, abs=0.3)
    # positioned by its mid-chord point
    np.testing.assert_allclose(0.5 * (le + te), [0.5, 0.2], atol=2e-3)


def test_file_shape_is_normalised_scaled_rotated_and_centred(tmp_path: Path) -> None:
    shutil.copy(ROOT / "assets" / "geometries" / "s1223.dat", tmp_path / "s1223.dat")
    scenario = Scenario(base_dir=tmp_path)
    pts = outline(FileShape("s1223.dat", (0.6, 0.2), 0.25, 0.0), scenario)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    assert (hi - lo).max() == pytest.approx(0.25)
    np.testing.assert_allclose(0.5 * (lo + hi), [0.6, 0.2], atol=1e-12)
    turned = outline(FileShape("s1223.dat", (0.6, 0.2), 0.25, 90.0), scenario)
    assert np.ptp(turned[:, 1]) == pytest.approx(0.25)


def test_stl_file_shape_takes_its_section(tmp_path: Path) -> None:
    scenario = Scenario(base_dir=ROOT / "assets" / "geometries")
    pts = outline(FileShape("rounded-wedge.stl", (0.5, 0.2), 0.2, 0.0), scenario)
    assert np.ptp(pts[:, 0]) == pytest.approx(0.2)
    assert np.ptp(pts[:, 1]) == pytest.approx(0.2 * 1.0 / 2.6, rel=1e-3)  # wedge is 2.6 × 1


def test_min_width_measures_thickness() -> None:
    pts = outline(Rectangle((0.5, 0.2), (0.2, 0.01), 30.0), SCENARIO)
    assert min_width(pts) == pytest.approx(0.01)


def test_resample_keeps_corners_and_spacing() -> None:
    square = outline(Rectangle((0.5, 0.2), (0.1, 0.1), 0.0), SCENARIO)
    pts = resample(square, 0.011, corner_deg=0.0)
    for corner in square:
        assert np.min(np.linalg.norm(pts - corner, axis=1)) < 1e-12
    seg = np.linalg.norm(np.roll(pts, -1, axis=0) - pts, axis=1)
    assert seg.max() <= 0.011 + 1e-12
    assert len(pts) == 4 * 10


def test_resample_refines_a_leading_edge() -> None:
    pts = resample(outline(Naca("0012", 0.2, (0.5, 0.2), 0.0), SCENARIO), 0.006)
    seg = np.linalg.norm(np.roll(pts, -1, axis=0) - pts, axis=1)
    nose = np.argmin(pts[:, 0])
    assert seg[nose] < 0.5 * 0.006 < seg.max()


def test_outline_distance_is_exact_near_and_capped_far() -> None:
    a = outline(Rectangle((0.5, 0.2), (0.1, 0.1), 0.0), SCENARIO)
    near = outline(Rectangle((0.63, 0.23), (0.1, 0.1), 0.0), SCENARIO)  # gap 0.03 in x
    assert outline_distance(a, near, cutoff=0.05) == pytest.approx(0.03)
    assert outline_distance(a, near, cutoff=0.01) == 0.01  # further than the cutoff
    crossing = outline(Rectangle((0.55, 0.2), (0.1, 0.02), 30.0), SCENARIO)
    assert outline_distance(a, crossing, cutoff=0.05) == 0.0
    far = outline(Circle((1.5, 0.2), 0.05), SCENARIO)
    assert outline_distance(a, far, cutoff=0.05) == 0.05


def test_contains() -> None:
    ring = outline(Circle((0.5, 0.2), 0.05), SCENARIO)
    assert contains(ring, np.array([0.52, 0.21]))
    assert not contains(ring, np.array([0.56, 0.2]))
