"""``python -m app.bench``: how smoothly the real window shows a run, measured on this machine.

For each mesh size it opens the main window, starts a run, and for a fixed wall time records
how many frames the backend produced, how many the viewport showed per second, how long renders
took, and the longest stall of the GUI thread (the largest gap between ticks of a 5 ms timer: a
click or a key press waits at most that long). Run it under Xvfb on a desktop-class machine:

    xvfb-run -a -s "-screen 0 1600x1000x24" python -m app.bench --nodes 2000 20000
    xvfb-run -a -s "-screen 0 1600x1000x24" python -m app.bench --nodes 2000 --backend reference

``replay`` feeds precomputed frames as fast as the worker thread can hand them over, so it
measures the viewport itself; ``reference`` or a model name measures a real run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.state import ModelChoice, RecentFiles, RunSettings, Session
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.rollout.bench import scenario_with_nodes
from engine.scenario import Scenario

HEARTBEAT_MS = 5


@dataclass
class BenchResult:
    nodes: int
    backend: str
    seconds: float
    steps_computed: int
    viewport_fps: float
    render_ms_mean: float
    render_ms_max: float
    longest_stall_ms: float
    multi_samples: int
    rate_limit: float  # steps/s the backend was held to (0: none)
    load_average: float  # the machine's 1-minute load during the run: other work skews results


def replay_source(mesh: TunnelMesh, scenario: Scenario, frames: int = 64):
    """A run made of a travelling wave pattern on the real mesh, precomputed so producing a frame
    costs only the hand-over (it isolates the viewport's cost from the model's)."""
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    n_obs = len(scenario.obstacles)
    fields = []
    for k in range(frames):
        phase = 2 * np.pi * k / frames
        u = 1.0 + 0.3 * np.sin(8 * x - phase) * np.cos(6 * y)
        v = 0.3 * np.cos(8 * x - phase) * np.sin(6 * y)
        fields.append((u, v, 0.5 * (u**2 + v**2)))

    def make(cancel: threading.Event) -> Iterator[Frame]:
        step = 0
        while not cancel.is_set():
            u, v, p = fields[step % frames]
            yield Frame(step, 0.01 * step, u, v, p, np.zeros((n_obs, 2)), np.zeros((n_obs, 2)))
            step += 1

    return make


def measure(window, seconds: float, make_source=None) -> tuple[int, float, list[float], float]:
    """Run for ``seconds`` and return (steps, shown fps, render times ms, longest stall ms)."""
    from PySide6.QtCore import QCoreApplication, QElapsedTimer, Qt, QTimer

    beats: list[float] = []
    renders: list[float] = []
    seen = window.viewport.renders
    heartbeat = QTimer(interval=HEARTBEAT_MS)
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)

    def beat() -> None:
        nonlocal seen
        beats.append(time.perf_counter())
        if window.viewport.renders != seen:
            seen = window.viewport.renders
            renders.append(window.viewport.last_render_ms)

    heartbeat.timeout.connect(beat)
    shown_before = window.viewport.renders
    window.start_run(make_source=make_source)
    heartbeat.start()
    clock = QElapsedTimer()
    clock.start()
    while clock.elapsed() < 1000 * seconds:
        QCoreApplication.processEvents()
        time.sleep(0.001)
    heartbeat.stop()
    steps = window.store.count
    shown = window.viewport.renders - shown_before
    window.reset()
    gaps = np.diff(beats) * 1000.0 if len(beats) > 1 else np.zeros(1)
    return steps, shown / seconds, renders, float(gaps.max())


def bench(nodes: int, backend: str, seconds: float, multi_samples: int, rate: float) -> BenchResult:
    from PySide6.QtCore import QCoreApplication

    from app.main_window import MainWindow

    scenario = scenario_with_nodes(nodes)
    model = ModelChoice("reference" if backend == "replay" else backend, "cpu")
    run = RunSettings(steps=10**7, playback_rate=rate)
    session = Session(scenario=scenario, model=model, run=run)
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(
            session,
            multi_samples=multi_samples,
            interactive=False,
            recent=RecentFiles(Path(tmp) / "recent.json"),
        )
        window.resize(1400, 900)
        window.show()
        # Wait for the mesh and the model, as a user sees both before pressing Run.
        while not window.mesh_is_current or window.model_loader.busy:
            QCoreApplication.processEvents()
            if window.errors:
                raise SystemExit(f"bench: {window.errors[-1]}")
            time.sleep(0.01)
        source = replay_source(window.mesh, scenario) if backend == "replay" else None
        steps, fps, renders, stall = measure(window, seconds, source)
        result = BenchResult(
            nodes=window.mesh.num_nodes,
            backend=backend,
            seconds=seconds,
            steps_computed=steps,
            viewport_fps=round(fps, 1),
            render_ms_mean=round(float(np.mean(renders)) if renders else 0.0, 1),
            render_ms_max=round(float(np.max(renders)) if renders else 0.0, 1),
            longest_stall_ms=round(stall, 1),
            multi_samples=multi_samples,
            rate_limit=rate,
            load_average=round(os.getloadavg()[0], 2),
        )
        window.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument(
        "--backend",
        default="replay",
        help="replay (viewport only), reference, or a model name/path",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--msaa", type=int, default=0)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="most steps/s the backend may produce (default: 100 for replay, "
        "i.e. a fast GPU model; unlimited otherwise)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per size")
    args = parser.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from engine.allocator import keep_freed_memory

    keep_freed_memory()  # as the app itself does, so the bench measures what users get
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("Slipstream bench")
    for nodes in args.nodes:
        rate = args.rate if args.rate is not None else (100.0 if args.backend == "replay" else 0)
        r = bench(nodes, args.backend, args.seconds, args.msaa, rate)
        if args.json:
            print(json.dumps(asdict(r)))
        else:
            print(
                f"{r.nodes:>6} nodes  {r.backend:<10} {r.steps_computed / r.seconds:7.1f} steps/s"
                f"  viewport {r.viewport_fps:5.1f} fps  render {r.render_ms_mean:.1f} ms mean,"
                f" {r.render_ms_max:.1f} max  longest GUI stall {r.longest_stall_ms:.1f} ms"
                f"  (msaa {r.multi_samples}, {r.seconds:g} s, load {r.load_average:g})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
