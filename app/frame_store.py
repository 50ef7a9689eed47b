"""A run's frames in memory, bounded: every step's forces, and full fields at a thinning stride.

The worker thread appends; the GUI thread reads the latest frame for the viewport and the stored
ones for the timeline and exports. When the fields outgrow the budget, every other stored frame is
dropped and the stride doubles, so the timeline still spans the whole run at coarser spacing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from engine.frame import Frame


@dataclass(frozen=True)
class History:
    """Per-step scalars of the run so far (every step, never thinned)."""

    time: np.ndarray  # [T]
    coefficients: np.ndarray  # [T, n_obstacles, 2] (c_D, c_L)
    forces: np.ndarray  # [T, n_obstacles, 2] (drag, lift) per unit depth
    ms_per_step: np.ndarray  # [T] wall time the backend took for each step


class FrameStore:
    def __init__(self, budget_bytes: int = 512 * 2**20) -> None:
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self.generation = 0
        self.clear()

    def clear(self) -> None:
        """Forget the run; frames still arriving from a run started before are then refused."""
        with self._lock:
            self.generation += 1
            self._frames: list[Frame] = []
            self._stride = 1
            self._latest: Frame | None = None
            self._count = 0
            self._time: list[float] = []
            self._coefficients: list[np.ndarray] = []
            self._forces: list[np.ndarray] = []
            self._ms: list[float] = []

    def append(self, frame: Frame, ms_per_step: float = 0.0, generation: int | None = None) -> bool:
        """Record a frame; False (and nothing stored) if ``generation`` is not the current one."""
        frame = Frame(
            frame.step,
            float(frame.time),
            np.asarray(frame.u, dtype=np.float32).copy(),
            np.asarray(frame.v, dtype=np.float32).copy(),
            np.asarray(frame.p, dtype=np.float32).copy(),
            np.asarray(frame.forces, dtype=np.float64).copy(),
            np.asarray(frame.coefficients, dtype=np.float64).copy(),
        )
        with self._lock:
            if generation is not None and generation != self.generation:
                return False
            if self._count % self._stride == 0:
                self._frames.append(frame)
                if len(self._frames) * _nbytes(frame) > self.budget_bytes:
                    self._frames = self._frames[::2]
                    self._stride *= 2
            self._latest = frame
            self._count += 1
            self._time.append(frame.time)
            self._coefficients.append(frame.coefficients)
            self._forces.append(frame.forces)
            self._ms.append(ms_per_step)
        return True

    @property
    def count(self) -> int:
        """Steps received so far (not all of them are stored)."""
        return self._count

    @property
    def stride(self) -> int:
        return self._stride

    def latest(self) -> Frame | None:
        return self._latest

    def frames(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> Frame:
        with self._lock:
            return self._frames[i]

    def history(self) -> History:
        with self._lock:
            n = len(self._time)
            n_obs = self._coefficients[0].shape[0] if n else 0
            return History(
                time=np.array(self._time),
                coefficients=np.array(self._coefficients).reshape(n, n_obs, 2),
                forces=np.array(self._forces).reshape(n, n_obs, 2),
                ms_per_step=np.array(self._ms),
            )


def _nbytes(frame: Frame) -> int:
    return frame.u.nbytes + frame.v.nbytes + frame.p.nbytes
