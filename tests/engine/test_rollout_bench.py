"""``bench rollout``: the app's rollout path timed on the scaled DFG cylinder (tiny, CPU)."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.rollout.bench import scenario_with_nodes


def test_the_scaled_cylinder_has_about_the_asked_node_count() -> None:
    from engine.geometry import build_tunnel_mesh

    for target in (600, 2000):
        nodes = build_tunnel_mesh(scenario_with_nodes(target)).num_nodes
        assert 0.7 * target < nodes < 1.3 * target


def test_bench_rollout_reports_the_shipped_step_and_the_network_alone(capsys) -> None:
    common = ["bench", "rollout", "--nodes", "600", "--steps", "3", "--warmup", "1"]
    assert main([*common, "--threads", "1", "--json"]) == 0
    assert main([*common, "--json", "--no-projection"]) == 0
    shipped, bare = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert shipped["model"] == "default" and shipped["steps"] == 3 and shipped["threads"] == 1
    assert shipped["mass_projection"] and shipped["projection_pressure"]  # the default's card
    assert not bare["mass_projection"] and not bare["projection_pressure"]
    assert shipped["nodes"] == bare["nodes"] and shipped["steps_per_s"] > 0
    assert shipped["first_step_s"] > 0


def test_bench_rollout_table_names_the_target(capsys) -> None:
    assert main(["bench", "rollout", "--nodes", "2000", "--steps", "2", "--warmup", "0"]) == 0
    line = capsys.readouterr().out
    assert "nodes" in line and "steps/s" in line and "target ≥ 20 at 2k nodes" in line


@pytest.mark.parametrize("bad", [["--steps", "0"], ["--warmup", "-1"]])
def test_bench_rollout_refuses_bad_counts(bad: list[str], capsys) -> None:
    assert main(["bench", "rollout", "--nodes", "600", *bad]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
