"""``python -m engine``: the headless command line.

Each sub-command lives beside the code it drives, in a module exposing ``register(subparsers)``;
this file only maps command names to those modules, so adding a command is one line here.
Running a command imports only its module: ``python -m engine mesh`` must not pay for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, str] = {
    "mesh": "engine.geometry.commands",
    "import": "engine.io.commands",
    "export": "engine.io.commands",
    "models": "engine.models.commands",
    "train": "engine.training.commands",
    "campaign": "engine.training.commands",
    "rollout": "engine.rollout.commands",
    "compare": "engine.evaluation.commands",
    "evaluate": "engine.evaluation.commands",
    "testset": "engine.evaluation.testset",
    "solve": "engine.solver.commands",
    "bench": "engine.bench.commands",
    "datagen": "engine.data.datagen",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of ``command``'s module when it is a known one."""
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user-facing errors print one clear line and exit 2, never a traceback."""
    from engine.allocator import keep_freed_memory
    from engine.errors import SlipstreamError

    keep_freed_memory()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SlipstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
