"""Shape-file loaders on real files: Selig and Lednicer airfoils, STL/OBJ/PLY sections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

from engine.errors import GeometryError
from engine.geometry import load_airfoil_dat, section_from_surface
from engine.geometry.polygon import self_intersection, signed_area

ROOT = Path(__file__).resolve().parents[2]
GEOMETRIES = ROOT / "assets" / "geometries"
FIXTURES = ROOT / "tests" / "data" / "geometry"


def test_selig_file_without_name_line_and_negative_x() -> None:
    pts = load_airfoil_dat(GEOMETRIES / "s1223.dat")
    lines = [ln for ln in (GEOMETRIES / "s1223.dat").read_text().splitlines() if ln.strip()]
    assert len(pts) == len(lines) - 1  # the repeated closing point is dropped
    np.testing.assert_allclose(pts[0], [1.0, 0.0])
    assert pts[:, 0].min() < 0  # leading-edge points with small negative x are kept
    assert signed_area(pts) > 0
    assert self_intersection(pts) is None


def test_selig_file_with_name_line_tab_and_blunt_trailing_edge() -> None:
    pts = load_airfoil_dat(GEOMETRIES / "naca4412-blunt.dat")
    assert len(pts) == 33  # 34 coordinate lines, closing repeat dropped
    np.testing.assert_allclose(pts[0], [0.95, 0.0147])
    np.testing.assert_allclose(pts[-1], [0.95, -0.0016])  # blunt: closes with a vertical segment
    assert pts[:, 0].max() == pytest.approx(0.95)
    assert signed_area(pts) > 0


def test_lednicer_file_gives_the_same_loop_as_selig() -> None:
    pts = load_airfoil_dat(FIXTURES / "naca4412-lednicer.dat")
    assert len(pts) == 35  # 18 + 18 points, the shared leading edge once
    np.testing.assert_allclose(pts[0], [1.0, 0.0013])
    np.testing.assert_allclose(pts[-1], [1.0, -0.0013])
    assert signed_area(pts) > 0
    blunt = load_airfoil_dat(GEOMETRIES / "naca4412-blunt.dat")
    for point in blunt:  # same published ordinates
        assert np.min(np.linalg.norm(pts - point, axis=1)) < 1e-9


def test_clockwise_file_comes_back_counter_clockwise(tmp_path: Path) -> None:
    src = load_airfoil_dat(GEOMETRIES / "s1223.dat")[::-1]
    path = tmp_path / "reversed.dat"
    path.write_text("\n".join(f"{x:.6f},{y:.6f}" for x, y in src))
    pts = load_airfoil_dat(path)
    assert signed_area(pts) > 0
    assert len(pts) == len(src)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no coordinates"),
        ("Name only\n", "no coordinates"),
        ("x\n1.0 0.0\n0.5 oops\n", "line 3"),
        ("x\n1.0 0.0\n0.0 0.0\n", "at least 3"),
        ("x\n  3.   3.\n0 0\n0.5 0.1\n1 0\n0 0\n0.5 -0.1\n", "Lednicer"),
        ("x\n1 0\n0 1\n1 1\n0 0\n", "crosses itself"),
    ],
)
def test_broken_airfoil_files_name_the_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.dat"
    path.write_text(text)
    with pytest.raises(GeometryError, match=words) as info:
        load_airfoil_dat(path)
    assert "bad.dat" in str(info.value)


@pytest.fixture(scope="module")
def wedge() -> pv.PolyData:
    return pv.read(GEOMETRIES / "rounded-wedge.stl")


def test_stl_section_is_the_wedge_outline() -> None:
    pts = section_from_surface(GEOMETRIES / "rounded-wedge.stl")
    np.testing.assert_allclose(pts.min(axis=0), [-0.5, -0.5], atol=1e-6)
    np.testing.assert_allclose(pts.max(axis=0), [2.1, 0.5], atol=1e-6)
    assert signed_area(pts) > 0
    assert self_intersection(pts) is None


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_obj_and_ply_sections_match_the_stl(
    tmp_path: Path, wedge: pv.PolyData, suffix: str
) -> None:
    path = tmp_path / f"wedge{suffix}"
    wedge.save(path)
    pts = section_from_surface(path, plane_z=0.25)
    ref = section_from_surface(GEOMETRIES / "rounded-wedge.stl", plane_z=0.25)
    assert signed_area(pts) == pytest.approx(signed_area(ref), rel=1e-6)


def test_plane_outside_the_body_is_an_error() -> None:
    with pytest.raises(GeometryError, match="misses the body"):
        section_from_surface(GEOMETRIES / "rounded-wedge.stl", plane_z=3.0)


def test_open_section_is_an_error(tmp_path: Path, wedge: pv.PolyData) -> None:
    """A surface with a slit in its side cuts to an open curve, not an outline."""
    centers = wedge.cell_centers().points
    slit = (centers[:, 0] > 1.0) & (centers[:, 1] > 0) & (np.abs(centers[:, 2] - 0.5) < 0.6)
    holed = wedge.extract_cells(np.flatnonzero(~slit)).extract_surface(algorithm=None)
    path = tmp_path / "holed.stl"
    holed.save(path)
    with pytest.raises(GeometryError, match="open"):
        section_from_surface(path)


def test_garbage_surface_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.stl"
    path.write_bytes(b"\x00\x01 not an stl at all")
    with pytest.raises(GeometryError, match=r"junk\.stl"):
        section_from_surface(path)
