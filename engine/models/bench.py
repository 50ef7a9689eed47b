"""``bench models``: parameters, training samples/s and inference ms/step of the three simulators.

Meshes are structured channels with a square obstacle (``engine.graph.synthetic``), so sizes up to
300k nodes build in seconds; edge counts match gmsh meshes of the same node count within a few
percent. Inference times one :meth:`Simulator.step` (featurised state in, boundary values
imposed) without the mass projection; training times one AdamW step on a batch of graphs
(several small graphs per batch, so small meshes are not dominated by launch overhead).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch_geometric.data import Batch

from engine.graph.synthetic import SYNTHETIC_SCENARIO, structured_channel_mesh
from engine.models.simulator import Simulator, SimulatorConfig, make_training_sample

Precision = Literal["fp32", "bf16"]
Mode = Literal["eager", "compiled"]
NODES_PER_TRAINING_BATCH = 20_000  # small meshes are batched up to about this many nodes
CHECKPOINT_ABOVE = 100_000  # larger training batches recompute activations to fit in memory
CONFIGS: dict[str, SimulatorConfig] = {
    "meshgraphnet": SimulatorConfig("meshgraphnet"),  # 15 blocks × 128, the paper's size
    "graph_transformer": SimulatorConfig("graph_transformer", {"size": "small"}),
    "graph_transformer_tiny": SimulatorConfig("graph_transformer", {"size": "tiny"}),
    "physgto": SimulatorConfig("physgto"),
}


@dataclass
class BenchRow:
    model: str
    nodes: int
    edges: int
    parameters: int
    device: str
    mode: Mode
    precision: Precision
    train_batch_graphs: int
    train_samples_per_s: float | None  # None: not measured (skipped or failed)
    infer_ms_per_step: float | None
    note: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds per call after ``warmup`` calls (compilation happens there)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@contextmanager
def _precision(device: torch.device, precision: Precision) -> Iterator[None]:
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        with nullcontext():
            yield


def _measure(
    model: str, nodes: int, device: torch.device, mode: Mode, precision: Precision,
    warmup: int, repeats: int, train: bool, batch_nodes: int, checkpoint_above: int,
) -> BenchRow:  # fmt: skip
    torch.manual_seed(0)
    mesh = structured_channel_mesh(nodes)
    sim = Simulator.from_config(CONFIGS[model]).to(device)
    # The networks are what these tables compare. The mass projection every rollout adds is
    # the same for all of them and costs per mesh, not per model (docs/models.md, The Simulator;
    # `bench rollout` times the whole step the app runs).
    sim.project_steps = False
    if mode == "compiled":
        sim.network.compile()
    static = sim.prepare(mesh, SYNTHETIC_SCENARIO, device)
    n = static.num_nodes
    velocity = torch.rand(n, 2, device=device)
    pressure = torch.rand(n, device=device)
    row = BenchRow(
        model=model, nodes=n, edges=int(static.edge_index.shape[1]),
        parameters=sum(p.numel() for p in sim.parameters()), device=str(device), mode=mode,
        precision=precision, train_batch_graphs=max(1, batch_nodes // n),
        train_samples_per_s=None, infer_ms_per_step=None,
    )  # fmt: skip
    try:
        sim.eval()

        def infer() -> None:
            with torch.no_grad(), _precision(device, precision):
                sim.step(static, velocity, pressure, 1.0)

        row.infer_ms_per_step = 1e3 * _timed(infer, device, warmup, repeats)
        if train:
            sample = make_training_sample(static, velocity, pressure, velocity, pressure, 0.02)
            batch = Batch.from_data_list([sample] * row.train_batch_graphs)
            sim.train()
            if row.train_batch_graphs * n > checkpoint_above:
                sim.network.activation_checkpointing = True
                row.note = "activation checkpointing"
            optimiser = torch.optim.AdamW(sim.parameters(), lr=1e-4)

            def train_step() -> None:
                optimiser.zero_grad(set_to_none=True)
                with _precision(device, precision):
                    loss = sim.loss(batch)
                loss.backward()
                optimiser.step()

            seconds = _timed(train_step, device, warmup, repeats)
            row.train_samples_per_s = row.train_batch_graphs / seconds
    except torch.OutOfMemoryError:
        row.note = "out of memory"
        row.train_samples_per_s = None
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def run_model_bench(
    models: list[str],
    sizes: list[int],
    device: str,
    modes: list[Mode],
    precisions: list[Precision],
    warmup: int = 2,
    repeats: int = 5,
    train_max_nodes: int = 10**9,
    train_batch_nodes: int = NODES_PER_TRAINING_BATCH,
    checkpoint_above: int = CHECKPOINT_ABOVE,
    progress: Callable[[BenchRow], None] | None = None,
) -> list[BenchRow]:
    """One row per (model, size, mode, precision); training skipped above ``train_max_nodes``.

    Training batches hold as many copies of the graph as fit in ``train_batch_nodes`` (≥ 1);
    batches of more than ``checkpoint_above`` nodes train with activation checkpointing.
    """
    dev = torch.device(device)
    rows = []
    for nodes in sizes:
        for model in models:
            for mode in modes:
                for precision in precisions:
                    train = nodes <= train_max_nodes
                    row = _measure(model, nodes, dev, mode, precision, warmup, repeats, train,
                                   train_batch_nodes, checkpoint_above)  # fmt: skip
                    if progress is not None:
                        progress(row)
                    rows.append(row)
    return rows


def device_name(device: str) -> str:
    """The accelerator's or CPU's name, for the table header."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU, {torch.get_num_threads()} threads"


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value < 10 ** (digits + 2) else f"{value:.0f}"


def markdown_table(rows: list[BenchRow]) -> str:
    lines = [
        "| model | nodes | edges | params | mode | precision | train samples/s (graphs/batch) "
        "| inference ms/step | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        train = _fmt(r.train_samples_per_s, 2)
        if r.train_samples_per_s is not None:
            train += f" ({r.train_batch_graphs})"
        lines.append(
            f"| {r.model} | {r.nodes:,} | {r.edges:,} | {r.parameters / 1e6:.2f}M | {r.mode} | "
            f"{r.precision} | {train} | {_fmt(r.infer_ms_per_step, 1)} | {r.note} |"
        )
    return "\n".join(lines)


def _csv(kind: type, text: str) -> list:
    return [kind(x) for x in text.split(",") if x]


def register(bench: argparse._SubParsersAction) -> None:
    parser = bench.add_parser(
        "models",
        help="learned simulators: parameters, training samples/s, inference ms/step",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--models", default=",".join(CONFIGS), help="comma-separated models")
    parser.add_argument("--sizes", default="2000,20000,300000", help="node counts, comma-separated")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", default="eager,compiled", help="eager and/or compiled")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (autocast)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed calls (compile happens here)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed calls; the median counts")
    parser.add_argument("--train-max-nodes", type=int, default=10**9,
                        help="skip training above this many nodes (slow CPUs)")  # fmt: skip
    parser.add_argument(
        "--train-batch-nodes",
        type=int,
        default=NODES_PER_TRAINING_BATCH,
        help="nodes per training batch: small graphs are repeated up to it",
    )
    parser.add_argument(
        "--checkpoint-above",
        type=int,
        default=CHECKPOINT_ABOVE,
        help="train with activation checkpointing when a batch has more nodes than this",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from engine.errors import ModelError

    models = _csv(str, args.models)
    unknown = sorted(set(models) - set(CONFIGS))
    if unknown:
        raise ModelError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    modes, precisions = _csv(str, args.modes), _csv(str, args.precisions)
    if set(modes) - {"eager", "compiled"} or set(precisions) - {"fp32", "bf16"}:
        raise ModelError("modes are eager/compiled and precisions fp32/bf16")
    progress = None if args.json else (lambda r: print(markdown_table([r]).splitlines()[-1]))
    if not args.json:
        print(f"# bench models on {device_name(args.device)}, torch {torch.__version__}")
        print("\n".join(markdown_table([]).splitlines()))
    rows = run_model_bench(models, _csv(int, args.sizes), args.device, modes, precisions,
                           args.warmup, args.repeats, args.train_max_nodes,
                           args.train_batch_nodes, args.checkpoint_above, progress)  # fmt: skip
    if args.json:
        report = {"device": device_name(args.device), "torch": torch.__version__,
                  "rows": [asdict(r) for r in rows]}  # fmt: skip
        print(json.dumps(report, indent=2))
    return 0 if all(math.isfinite(r.infer_ms_per_step or 0.0) for r in rows) else 1
