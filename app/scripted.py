"""Scripted use of the real window: mesh, run N steps, screenshot, export, quit.

It drives the window through the same signals a user triggers, so what it produces (the README's
screenshots, the tests' exports) is what the app does interactively.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from app.export import ExportOptions


class Script(QObject):
    def __init__(
        self,
        window,
        *,
        steps: int | None,
        screenshot: Path | None,
        window_screenshot: Path | None,
        export: Path | None,
        quit_when_done: bool,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.steps = steps
        self.screenshot = screenshot
        self.window_screenshot = window_screenshot
        self.export = export
        self.quit_when_done = quit_when_done
        self.exit_code = 0
        self._started = False

    def start(self) -> None:
        wanted = (self.steps, self.screenshot, self.window_screenshot, self.export)
        if not (any(wanted) or self.quit_when_done):
            return  # plain interactive start
        self.window.mesh_failed.connect(lambda _: self._finish(2))
        if self.window.mesh_is_current:
            QTimer.singleShot(0, self._meshed)
        else:
            self.window.mesh_ready.connect(self._meshed)

    def _meshed(self) -> None:
        if self._started:  # a later re-mesh is not a new script
            return
        self._started = True
        if self.steps:
            self.window.run_finished.connect(self._ran)
            self.window.run_pause()
        else:
            self._ran("finished")

    def _ran(self, outcome: str) -> None:
        if outcome == "failed":
            self._finish(2)
            return
        QApplication.processEvents()
        if self.screenshot:
            self.screenshot.parent.mkdir(parents=True, exist_ok=True)
            self.window.viewport.screenshot(str(self.screenshot))
            print(f"wrote {self.screenshot}")
        if self.window_screenshot:
            self._grab_window(self.window_screenshot)
        if self.export:
            written = self.window.export(ExportOptions(self.export, png=False))
            for path in written:
                print(f"wrote {path}")
        self._finish(2 if self.window.errors else 0)

    def _grab_window(self, path: Path) -> None:
        """The whole window as the X server shows it: ``QWidget.grab`` would leave the OpenGL
        viewport blank, the screen's copy includes it."""
        window = self.window
        window.raise_()
        window._refresh_readouts()
        for _ in range(20):  # let the last frame and the plots paint
            QApplication.processEvents()
            time.sleep(0.02)
        path.parent.mkdir(parents=True, exist_ok=True)
        window.screen().grabWindow(window.winId()).save(str(path))
        print(f"wrote {path}")

    def _finish(self, code: int) -> None:
        self.exit_code = code
        if self.quit_when_done:
            if code:
                print("slipstream: the script stopped on an error", file=sys.stderr)
            self.window.close()
            QApplication.instance().quit()
