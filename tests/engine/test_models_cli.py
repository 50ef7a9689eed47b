"""``python -m engine models``: lists model files with their cards, as text and JSON."""

from __future__ import annotations

import json

from engine.cli import main
from engine.models import zoo
from engine.models.card import TrainingEnvelope
from engine.models.simulator import Simulator, SimulatorConfig


def test_models_command_lists_cards(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    sim = Simulator.from_config(
        SimulatorConfig("meshgraphnet", {"latent": 8, "num_blocks": 1}, name="cyl")
    )
    sim.card.envelope = TrainingEnvelope(reynolds=(80.0, 120.0), shape_classes=("circle",))
    sim.card.metrics = {"rollout_rmse_u": 0.0123}
    sim.save(tmp_path / "shipped" / "cyl")
    sim.card.name = "mine"
    sim.save(tmp_path / "elsewhere" / "mine")
    (tmp_path / "elsewhere" / "broken.json").write_text("{")
    (tmp_path / "elsewhere" / "broken.safetensors").write_bytes(b"")

    assert main(["models", str(tmp_path / "elsewhere")]) == 0
    text = capsys.readouterr().out
    assert "cyl  [meshgraphnet]" in text and "Re 80–120" in text and "circle" in text
    assert "rollout_rmse_u 0.0123" in text and "mine  [meshgraphnet]" in text
    assert "broken: unreadable card" in text

    assert main(["models", "--json", str(tmp_path / "elsewhere" / "mine.json")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["card"]["name"] for entry in listed] == ["cyl", "mine"]
    assert listed[0]["card"]["envelope"]["reynolds"] == [80.0, 120.0]

    assert main(["models", str(tmp_path / "nowhere")]) == 2
    assert "no such model" in capsys.readouterr().err
