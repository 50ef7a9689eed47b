"""``python -m engine bench``: a group of benchmark sub-commands.

Each benchmark lives in its own module exposing ``register(bench_subparsers)``; adding one is a
line in :data:`BENCH_MODULES` (``bench dfg`` validates the reference solver, ``bench floor``
measures its spread against itself, others time models).
"""

from __future__ import annotations

import argparse
import importlib

BENCH_MODULES: tuple[str, ...] = (
    "engine.bench.dfg",
    "engine.bench.floor",
    "engine.solver.batched.bench",
    "engine.models.bench",
    "engine.rollout.bench",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (solver accuracy, model speed)",
        description="Run one benchmark and report its numbers beside their references.",
    )
    bench = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name in BENCH_MODULES:
        importlib.import_module(name).register(bench)
