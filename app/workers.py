"""Threads that run engine work off the GUI thread.

:class:`RunWorker` drives a frame generator and drops each frame into a :class:`FrameStore`; it
emits no per-frame signal, so a slow viewport never builds a queue: the GUI polls the store on a
timer and shows whatever is latest. :class:`LatestOnlyRunner` runs one job at a time and keeps only
the newest pending request, so dragging a slider re-meshes once at the end, not 200 times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

from app.frame_store import FrameStore
from engine.frame import Frame


class RunWorker(QThread):
    """Pulls frames from ``make_source(cancel)`` until done, cancelled or failed.

    Pausing simply stops calling ``next()``: the generator stays suspended with its state. ``step``
    allows exactly one more frame while paused.
    """

    failed = Signal(object)  # the exception
    state_changed = Signal(str)  # "running", "paused", "finished", "cancelled"

    def __init__(
        self,
        make_source: Callable[[threading.Event], Iterator[Frame]],
        store: FrameStore,
        max_rate: float = 0.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._make_source = make_source
        self._store = store
        self._generation = store.generation  # a reset of the store disowns this run's frames
        self.max_rate = max_rate
        self._cancel = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._step_credit = 0
        self._lock = threading.Lock()
        self.outcome = "running"

    # ---- control, called from the GUI thread --------------------------------------------------
    def pause(self) -> None:
        self._go.clear()
        self.state_changed.emit("paused")

    def resume(self) -> None:
        self._go.set()
        self.state_changed.emit("running")

    def step(self) -> None:
        with self._lock:
            self._step_credit += 1

    def cancel(self) -> None:
        self._cancel.set()
        self._go.set()

    @property
    def paused(self) -> bool:
        return not self._go.is_set()

    # ---- the thread ----------------------------------------------------------------------------
    def run(self) -> None:
        source: Iterator[Frame] | None = None
        outcome = "finished"
        try:
            source = self._make_source(self._cancel)
            while True:
                if not self._wait_for_permission():
                    outcome = "cancelled"
                    break
                started = time.perf_counter()
                frame = next(source, None)
                if frame is None:
                    break
                elapsed = time.perf_counter() - started
                if not self._store.append(frame, 1000.0 * elapsed, self._generation):
                    outcome = "cancelled"
                    break
                if self.max_rate > 0:
                    self._cancel.wait(max(0.0, 1.0 / self.max_rate - elapsed))
            if self._cancel.is_set():
                outcome = "cancelled"
        except Exception as exc:  # every failure reaches the user as a message, never a crash
            outcome = "failed"
            self.failed.emit(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        self.outcome = outcome
        self.state_changed.emit(outcome)

    def _wait_for_permission(self) -> bool:
        """Block while paused (unless a step was granted); False once cancelled."""
        while not self._cancel.is_set():
            with self._lock:
                if self._step_credit > 0:
                    self._step_credit -= 1
                    return True
            if self._go.wait(0.05):
                return not self._cancel.is_set()
        return False


class _Job(QThread):
    def __init__(self, key: Any, fn: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.fn = fn
        self.result: Any = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as exc:  # handed to the GUI thread, which shows it
            self.error = exc


class LatestOnlyRunner(QObject):
    """Runs submitted callables one at a time in a thread; newer submissions replace pending ones.

    ``done(key, result)`` or ``failed(key, exception)`` fire on the GUI thread only for the newest
    key: results of requests that were overtaken while running are discarded.
    """

    done = Signal(object, object)
    failed = Signal(object, object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: _Job | None = None
        self._pending: tuple[Any, Callable[[], Any]] | None = None
        self._latest_key: Any = None
        self.jobs_run = 0

    @property
    def busy(self) -> bool:
        return self._running is not None

    def submit(self, key: Any, fn: Callable[[], Any]) -> None:
        self._latest_key = key
        if self._running is None:
            self._start(key, fn)
        else:
            self._pending = (key, fn)

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until idle (for shutdown and tests); False on timeout."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self._running is not None or self._pending is not None:
            if time.monotonic() > deadline:
                return False
            if self._running is not None:
                self._running.wait(20)
            QCoreApplication.processEvents()
        return True

    def _start(self, key: Any, fn: Callable[[], Any]) -> None:
        job = _Job(key, fn, self)
        job.finished.connect(lambda: self._finish(job))
        self._running = job
        self.jobs_run += 1
        self.busy_changed.emit(True)
        job.start()

    def _finish(self, job: _Job) -> None:
        job.wait()
        self._running = None
        job.deleteLater()
        if self._pending is not None:
            key, fn = self._pending
            self._pending = None
            self._start(key, fn)
        else:
            self.busy_changed.emit(False)
        if job.key != self._latest_key:
            return
        if job.error is not None:
            self.failed.emit(job.key, job.error)
        else:
            self.done.emit(job.key, job.result)
