"""``slipstream``: the desktop app, and its scripted mode for demos, docs and tests.

    slipstream --scenario FILE --model NAME|reference --steps N --screenshot out.png \\
               --export DIR --quit

With no arguments the window opens on the DFG 2D-2 cylinder (Re 100) with the shipped default
model, or the reference solver when no model is shipped.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from pathlib import Path

from app.state import REFERENCE_BACKEND, ModelChoice, RunSettings, Session


def window_size(text: str) -> tuple[int, int]:
    """``--size WxH`` as (width, height), with a message argparse can show."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1400x900") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"{text!r}: the window needs at least 200x200 pixels")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipstream", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, help="scenario (.json) to open")
    parser.add_argument("--session", type=Path, help="session (.json) to restore")
    parser.add_argument("--model", help="a shipped model's name, a model file, or 'reference'")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--steps", type=int, help="steps to run; with it the run starts by itself")
    parser.add_argument("--field", help="field to show: speed, u, v, p or vorticity")
    parser.add_argument("--overlay", choices=("none", "streamlines", "glyphs"))
    parser.add_argument("--edges", action="store_true", help="show mesh edges")
    parser.add_argument("--screenshot", type=Path, help="save the viewport as PNG after the run")
    parser.add_argument(
        "--window-screenshot",
        type=Path,
        metavar="PNG",
        help="save the whole window (panels, plots, viewport) as PNG after the run",
    )
    parser.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="after the run, write VTU+PVD and CSV to DIR",
    )
    parser.add_argument("--quit", action="store_true", help="quit when the script is done")
    parser.add_argument(
        "--size",
        type=window_size,
        metavar="WxH",
        help="window size (default 1400x900, or less to fit the screen)",
    )
    parser.add_argument(
        "--msaa",
        type=int,
        default=0,
        help="multisampling (0 is fastest; 8 looks smoother on a real GPU)",
    )
    return parser


def initial_session(args: argparse.Namespace) -> Session:
    """The session the window opens on, from the command line (raises SlipstreamError)."""
    from app import backends
    from engine.scenario import Scenario

    session = Session.load(args.session) if args.session else Session()
    if args.scenario:
        session.scenario = Scenario.load(args.scenario)
        session.run = RunSettings(steps=session.scenario.time.steps)
    if not args.session:
        session.model = backends.default_choice(args.device)
    if args.model:
        device = args.device or (
            backends.best_device() if args.model != REFERENCE_BACKEND else "cpu"
        )
        session.model = ModelChoice(args.model, device)
    if args.steps:
        session.run = RunSettings(steps=args.steps, playback_rate=session.run.playback_rate)
    if args.field or args.overlay or args.edges:
        from dataclasses import replace

        session.view = replace(
            session.view,
            field=args.field or session.view.field,
            overlay=args.overlay or session.view.overlay,
            show_edges=args.edges or session.view.show_edges,
        )
    return session


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.scripted import Script
    from engine.allocator import keep_freed_memory
    from engine.errors import SlipstreamError

    keep_freed_memory()
    try:
        session = initial_session(args)
    except (SlipstreamError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Slipstream")
    scripted = bool(args.quit)
    window = MainWindow(session, multi_samples=args.msaa, interactive=not scripted)
    if args.size:  # else the window's own default, fitted to the screen
        window.resize(*args.size)
    window.show()
    previous_hook = sys.excepthook
    sys.excepthook = lambda kind, exc, tb, w=window: _report_unexpected(w, exc, scripted)
    script = Script(
        window,
        steps=args.steps,
        screenshot=args.screenshot,
        window_screenshot=args.window_screenshot,
        export=args.export,
        quit_when_done=args.quit,
    )
    script.start()
    try:
        status = app.exec()
    finally:
        sys.excepthook = previous_hook
    # Tear the window (VTK, pyqtgraph, the engine's tensors) down while Qt is still alive: left
    # to interpreter finalization, a scripted run of 500 frames once aborted in a C extension's
    # deallocator after its screenshots were written.
    del window, script.window
    gc.collect()
    return script.exit_code if args.quit else status


def _report_unexpected(window, exc: BaseException, scripted: bool) -> None:
    """A bug in a slot: tell the user and keep going (interactive) or stop with status 2."""
    import traceback

    traceback.print_exception(exc)
    window.show_error("Unexpected error", exc)
    if scripted:
        from PySide6.QtWidgets import QApplication

        QApplication.instance().exit(2)


if __name__ == "__main__":
    raise SystemExit(main())
