"""Plane-geometry operations on closed outlines ([K, 2] arrays, last point not repeated).

Kept dependency-free (numpy only) so validation and meshing need nothing beyond what ships.
"""

from __future__ import annotations

import itertools

import numpy as np


def signed_area(points: np.ndarray) -> float:
    """Shoelace area: positive for a counter-clockwise outline."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def ensure_ccw(points: np.ndarray) -> np.ndarray:
    return points if signed_area(points) >= 0 else points[::-1].copy()


def rotate(points: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate about the origin, counter-clockwise."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return points @ np.array([[c, s], [-s, c]])


def drop_duplicates(points: np.ndarray, tol: float) -> np.ndarray:
    """Remove consecutive points closer than ``tol`` (including last-to-first)."""
    keep = [0]
    for i in range(1, len(points)):
        if np.linalg.norm(points[i] - points[keep[-1]]) > tol:
            keep.append(i)
    while len(keep) > 1 and np.linalg.norm(points[keep[-1]] - points[keep[0]]) <= tol:
        keep.pop()
    return points[keep]


def segments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points [K, 2] of the outline's K closing segments."""
    return points, np.roll(points, -1, axis=0)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _proper_crossings(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """Matrix [A, B] of whether segment a_i strictly crosses or touches segment b_j."""
    da = (a1 - a0)[:, None, :]
    db = (b1 - b0)[None, :, :]
    d1 = _cross(da, b0[None, :, :] - a0[:, None, :])
    d2 = _cross(da, b1[None, :, :] - a0[:, None, :])
    d3 = _cross(db, a0[:, None, :] - b0[None, :, :])
    d4 = _cross(db, a1[:, None, :] - b0[None, :, :])
    return (d1 * d2 <= 0) & (d3 * d4 <= 0) & ~((d1 == 0) & (d2 == 0))


def self_intersection(points: np.ndarray) -> tuple[int, int] | None:
    """Indices of two non-adjacent segments that cross, or None for a simple outline."""
    k = len(points)
    a0, a1 = segments(points)
    chunk = 512
    for start in range(0, k, chunk):
        hits = _proper_crossings(a0[start : start + chunk], a1[start : start + chunk], a0, a1)
        i = np.arange(start, min(start + chunk, k))[:, None]
        j = np.arange(k)[None, :]
        adjacent = (np.abs(i - j) <= 1) | (np.abs(i - j) == k - 1)
        hits &= ~adjacent
        if hits.any():
            ii, jj = np.argwhere(hits)[0]
            return int(start + ii), int(jj)
    return None


def contains(polygon: np.ndarray, point: np.ndarray) -> bool:
    """Even-odd point-in-polygon test."""
    x, y = point
    a, b = segments(polygon)
    straddle = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return bool(np.count_nonzero(straddle & (x < x_cross)) % 2)


def point_segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance [P, S] from each point to each segment a_j–b_j."""
    ab = b - a
    ap = points[:, None, :] - a[None, :, :]
    denom = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300)
    t = np.clip(np.einsum("psj,sj->ps", ap, ab) / denom, 0.0, 1.0)
    closest = a[None, :, :] + t[..., None] * ab[None, :, :]
    return np.linalg.norm(points[:, None, :] - closest, axis=-1)


def outline_distance(p: np.ndarray, q: np.ndarray, cutoff: float) -> float:
    """Smallest distance between two outlines: 0 if they cross, ``cutoff`` if it is at least that.

    Only segments inside the window where the two bounding boxes (grown by ``cutoff``) meet can
    be closer than ``cutoff``, so only those are compared: cheap for well-separated obstacles.
    """
    lo = np.maximum(p.min(axis=0), q.min(axis=0)) - cutoff
    hi = np.minimum(p.max(axis=0), q.max(axis=0)) + cutoff
    if (lo > hi).any():
        return cutoff

    def in_window(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = segments(points)
        keep = (np.minimum(a, b) <= hi).all(axis=1) & (np.maximum(a, b) >= lo).all(axis=1)
        return a[keep], b[keep]

    pa, pb = in_window(p)
    qa, qb = in_window(q)
    if len(pa) == 0 or len(qa) == 0:
        return cutoff
    if _proper_crossings(pa, pb, qa, qb).any():
        return 0.0
    # non-crossing segments are closest at an endpoint of one of them
    nearest = min(
        point_segment_distance(np.vstack([pa, pb]), qa, qb).min(),
        point_segment_distance(np.vstack([qa, qb]), pa, pb).min(),
    )
    return float(min(nearest, cutoff))


def min_width(points: np.ndarray) -> float:
    """Smallest extent over all directions (the thickness of a slender body).

    The minimum is attained across one of the convex hull's edges (rotating calipers).
    """
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:  # all points on a line: no thickness at all
        return 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    proj = hull @ normals.T
    return float((proj.max(axis=0) - proj.min(axis=0)).min())


def corner_indices(points: np.ndarray, angle_deg: float) -> np.ndarray:
    """Vertices where the outline turns by more than ``angle_deg`` (kept exactly when meshing)."""
    prev = points - np.roll(points, 1, axis=0)
    nxt = np.roll(points, -1, axis=0) - points
    turn = np.arctan2(_cross(prev, nxt), np.einsum("ij,ij->i", prev, nxt))
    return np.flatnonzero(np.abs(np.rad2deg(turn)) > angle_deg)


def resample(points: np.ndarray, spacing: float, corner_deg: float = 30.0) -> np.ndarray:
    """Redistribute outline points at about ``spacing`` apart, finer where the outline bends.

    Corners are kept exactly; between them points are placed at equal steps of ∫ ds / h(s),
    where h shrinks with the local radius of curvature (so a leading edge gets more than one
    or two points) but never below a quarter of ``spacing``.
    """
    corners = corner_indices(points, corner_deg)
    if len(corners) == 0:
        corners = np.array([int(np.argmax(points[:, 0]))])
    rolled = np.roll(points, -corners[0], axis=0)
    corners = (corners - corners[0]) % len(points)
    bounds = [*corners.tolist(), len(points)]
    closed = np.vstack([rolled, rolled[:1]])

    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    prev = np.roll(np.diff(closed, axis=0), 1, axis=0)
    nxt = np.diff(closed, axis=0)
    turn = np.abs(np.arctan2(_cross(prev, nxt), np.einsum("ij,ij->i", prev, nxt)))
    local_len = 0.5 * (seg + np.roll(seg, 1))
    radius = local_len / np.maximum(turn, 1e-12)  # at each vertex
    # 20° of arc per element, clipped to [spacing/4, spacing]
    h_vertex = np.clip(radius * np.deg2rad(20.0), spacing / 4.0, spacing)
    h_vertex[corners] = spacing  # corners themselves don't refine their neighbourhood

    out: list[np.ndarray] = []
    for start, stop in itertools.pairwise(bounds):
        piece = closed[start : stop + 1]
        ds = seg[start:stop]
        s = np.concatenate([[0.0], np.cumsum(ds)])
        h = np.concatenate([h_vertex[start:stop], [h_vertex[stop % len(points)]]])
        h[0] = h[1] if len(h) > 2 else h[0]
        h[-1] = h[-2] if len(h) > 2 else h[-1]
        cost = np.concatenate([[0.0], np.cumsum(ds * 2.0 / (h[:-1] + h[1:]))])
        n = max(1, int(np.ceil(cost[-1] - 1e-9)))
        targets = np.linspace(0.0, cost[-1], n + 1)[:-1]
        s_new = np.interp(targets, cost, s)
        out.append(
            np.stack([np.interp(s_new, s, piece[:, 0]), np.interp(s_new, s, piece[:, 1])], axis=1)
        )
    return np.vstack(out)
