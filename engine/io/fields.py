"""Finding velocity and pressure among another solver's arrays, whatever it named them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.errors import DataFormatError

VECTOR_NAMES = ("velocity", "Velocity", "VELOCITY", "U", "u", "vel", "Vel")
COMPONENT_NAMES = (
    ("u", "v"),
    ("Ux", "Uy"),
    ("U_x", "U_y"),
    ("velocity_x", "velocity_y"),
    ("Velocity_X", "Velocity_Y"),
    ("vx", "vy"),
)
PRESSURE_NAMES = ("pressure", "Pressure", "PRESSURE", "p", "P")


def _listing(arrays: Mapping[str, np.ndarray]) -> str:
    return ", ".join(sorted(arrays)) or "none"


def pick_velocity(arrays: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """Velocity [N, 2] from a 2- or 3-component vector array or from two scalar arrays."""
    for name in VECTOR_NAMES:
        a = arrays.get(name)
        if a is not None and a.ndim == 2 and a.shape[1] in (2, 3):
            return np.asarray(a[:, :2], dtype=np.float32)
    for x, y in COMPONENT_NAMES:
        if x in arrays and y in arrays:
            return np.stack([arrays[x].reshape(-1), arrays[y].reshape(-1)], axis=-1).astype(
                np.float32
            )
    raise DataFormatError(
        f"{where}: no velocity array (looked for a vector named {'/'.join(VECTOR_NAMES)} or "
        f"components such as u+v, Ux+Uy; found: {_listing(arrays)})"
    )


def pick_pressure(arrays: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """Pressure [N] from a scalar array."""
    for name in PRESSURE_NAMES:
        a = arrays.get(name)
        if a is not None and (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)):
            return np.asarray(a.reshape(-1), dtype=np.float32)
    raise DataFormatError(
        f"{where}: no pressure array (looked for {'/'.join(PRESSURE_NAMES)}; "
        f"found: {_listing(arrays)})"
    )


def cells_to_points(cells: np.ndarray, values: np.ndarray, num_points: int) -> np.ndarray:
    """Average cell values [C, ...] onto the vertices [N, ...] (solvers that store cell data)."""
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    count = np.bincount(cells.ravel(), minlength=num_points).astype(np.float64)
    out = np.zeros((num_points, flat.shape[1]))
    for k in range(flat.shape[1]):
        out[:, k] = np.bincount(
            cells.ravel(), weights=np.repeat(flat[:, k], 3), minlength=num_points
        )
    out /= np.maximum(count, 1)[:, None]
    return out.reshape((num_points, *values.shape[1:]))
