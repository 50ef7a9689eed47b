"""``python -m engine``: the headless command line.

Each sub-command lives beside the code it drives, in a module exposing ``register(subparsers)``;
this file only lists those modules, so adding a command is one line here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "engine.geometry.commands",
    "engine.io.commands",
    "engine.models.commands",
    "engine.training.commands",
    "engine.rollout.commands",
    "engine.evaluation.commands",
    "engine.evaluation.testset",
    "engine.solver.commands",
    "engine.bench.commands",
    "engine.data.datagen",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user-facing errors print one clear line and exit 2, never a traceback."""
    from engine.errors import SlipstreamError

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SlipstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
