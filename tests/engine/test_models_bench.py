"""``bench models``: rows for every combination, table and JSON output (tiny models, CPU)."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.models import bench
from engine.models.simulator import SimulatorConfig


@pytest.fixture
def tiny_models(monkeypatch):
    monkeypatch.setattr(bench, "CONFIGS", {
        "meshgraphnet": SimulatorConfig("meshgraphnet", {"latent": 8, "num_blocks": 1}),
        "physgto": SimulatorConfig("physgto", {"dim": 8, "num_blocks": 1, "heads": 2,
                                               "num_tokens": 4}),
    })  # fmt: skip


def test_bench_rows_and_table(tiny_models) -> None:
    seen = []
    rows = bench.run_model_bench(["meshgraphnet", "physgto"], [150, 300], "cpu", ["eager"],
                                 ["bf16"], warmup=0, repeats=1, train_max_nodes=200,
                                 progress=seen.append)  # fmt: skip
    assert len(rows) == 4 and seen == rows
    small = [r for r in rows if r.nodes < 200]
    assert all(r.train_samples_per_s > 0 and r.infer_ms_per_step > 0 for r in small)
    assert all(r.train_batch_graphs == bench.NODES_PER_TRAINING_BATCH // r.nodes for r in small)
    large = [r for r in rows if r.nodes >= 200]
    assert all(r.train_samples_per_s is None and r.infer_ms_per_step > 0 for r in large)
    assert all(r.edges > 2 * r.nodes for r in rows)
    table = bench.markdown_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| meshgraphnet |" in table


def test_bench_command_json(tiny_models, capsys) -> None:
    args = ["bench", "models", "--models", "physgto", "--sizes", "120", "--modes", "eager",
            "--precisions", "fp32", "--warmup", "0", "--repeats", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"].startswith("CPU") and len(report["rows"]) == 1
    assert report["rows"][0]["parameters"] > 0
    assert main([*args[:3], "resnet"]) == 2
    assert "unknown model" in capsys.readouterr().err
