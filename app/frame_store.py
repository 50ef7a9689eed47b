"""A run's frames in memory, bounded: every step's forces, and full fields at a thinning stride.

The worker thread appends; the GUI thread reads the latest frame for the viewport and the stored
ones for the timeline and exports. When the fields outgrow the budget, every other stored frame is
dropped and the stride doubles, so the timeline still spans the whole run at coarser spacing.
Per-step scalars live in arrays that grow by doubling, so reading them each frame stays cheap.
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
            self._time = np.zeros(0)
            self._coefficients = np.zeros((0, 0, 2))
            self._forces = np.zeros((0, 0, 2))
            self._ms = np.zeros(0)

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
            self._grow(frame.coefficients.shape[0])
            i = self._count
            self._time[i] = frame.time
            self._coefficients[i] = frame.coefficients
            self._forces[i] = frame.forces
            self._ms[i] = ms_per_step
            self._latest = frame
            self._count += 1
        return True

    def _grow(self, n_obstacles: int) -> None:
        if self._count < len(self._time):
            return
        capacity = max(256, 2 * len(self._time))

        def grown(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
            out = np.zeros(shape)
            if self._count:
                out[: self._count] = a[: self._count]
            return out

        self._time = grown(self._time, (capacity,))
        self._coefficients = grown(self._coefficients, (capacity, n_obstacles, 2))
        self._forces = grown(self._forces, (capacity, n_obstacles, 2))
        self._ms = grown(self._ms, (capacity,))

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

    def history(self, last: int | None = None) -> History:
        """Copies of the per-step arrays, all steps or the ``last`` ones."""
        with self._lock:
            start = 0 if last is None else max(0, self._count - last)
            span = slice(start, self._count)
            return History(
                time=self._time[span].copy(),
                coefficients=self._coefficients[span].copy(),
                forces=self._forces[span].copy(),
                ms_per_step=self._ms[span].copy(),
            )


def _nbytes(frame: Frame) -> int:
    return frame.u.nbytes + frame.v.nbytes + frame.p.nbytes
