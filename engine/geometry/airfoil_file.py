"""Airfoil coordinate files (.dat) in the two layouts found in the wild: Selig and Lednicer.

Selig: an optional name line, then one loop trailing edge → upper surface → leading edge → lower
surface → trailing edge. Lednicer: a name line, a line with the two point counts, then the upper
surface leading → trailing edge and the lower surface leading → trailing edge, usually separated
by a blank line. Both may use tabs or commas; a repeated closing point is dropped, a blunt
(open) trailing edge is kept as a straight closing segment.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.errors import GeometryError
from engine.geometry.polygon import drop_duplicates, ensure_ccw, self_intersection

_NUMBER_PAIR = re.compile(
    r"^\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)[\s,;]+([-+]?[\d.]+(?:[eE][-+]?\d+)?)"
)


def _parse_rows(path: Path) -> list[tuple[int, float, float]]:
    """(line number, x, y) of every coordinate line; header lines before the data are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise GeometryError(f"{path}: cannot read the airfoil file ({exc.strerror})") from None
    rows: list[tuple[int, float, float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _NUMBER_PAIR.match(line)
        if match is None:
            if rows:
                raise GeometryError(
                    f"{path}, line {lineno}: expected two numbers, got {line.strip()!r}"
                )
            continue  # the free-text name line (or several header lines) before the data
        try:
            rows.append((lineno, float(match.group(1)), float(match.group(2))))
        except ValueError:
            raise GeometryError(f"{path}, line {lineno}: not a number: {line.strip()!r}") from None
    return rows


def load_airfoil_dat(path: str | Path) -> np.ndarray:
    """Outline [K, 2] in file coordinates (unit chord usually), counter-clockwise, not closed."""
    path = Path(path)
    rows = _parse_rows(path)
    if not rows:
        raise GeometryError(f"{path}: no coordinates found")
    coords = np.array([(x, y) for _, x, y in rows], dtype=float)
    if not np.isfinite(coords).all():
        raise GeometryError(f"{path}: coordinates must be finite numbers")

    n_upper, n_lower = coords[0]
    is_lednicer = n_upper >= 2 and n_lower >= 2 and n_upper.is_integer() and n_lower.is_integer()
    if is_lednicer:
        nu, nl = int(n_upper), int(n_lower)
        body = coords[1:]
        if len(body) != nu + nl:
            raise GeometryError(
                f"{path}: Lednicer header announces {nu} + {nl} points but {len(body)} follow"
            )
        upper, lower = body[:nu], body[nu:]
        # upper surface back from trailing to leading edge, then lower surface forward
        points = np.vstack([upper[::-1], lower])
    else:
        points = coords

    if len(points) < 3:
        raise GeometryError(f"{path}: an outline needs at least 3 points, found {len(points)}")
    chord = float(np.ptp(points[:, 0]))
    if chord <= 0:
        raise GeometryError(f"{path}: all points have the same x; not an airfoil")
    points = drop_duplicates(points, 1e-9 * chord)
    if len(points) < 3:
        raise GeometryError(f"{path}: fewer than 3 distinct points")
    crossing = self_intersection(points)
    if crossing is not None:
        i, j = crossing
        raise GeometryError(
            f"{path}: the outline crosses itself (segments near points {i + 1} and {j + 1}); "
            "check the point order"
        )
    return ensure_ccw(points)
