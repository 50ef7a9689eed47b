"""The engine imports and works with Qt absent (DESIGN.md: app imports engine, not the reverse)."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "engine",
    "engine.scenario",
    "engine.geometry",
    "engine.data.trajectory",
    "engine.io.vtk",
    "engine.rollout",
    "engine.models.simulator",
    "engine.cli",
]

SCRIPT = f"""
import importlib, sys
for name in ("PySide6", "PyQt5", "PyQt6", "pyvistaqt", "superqt", "pyqtgraph"):
    sys.modules[name] = None  # any import of these now raises ImportError
for name in {ENGINE_MODULES!r}:
    importlib.import_module(name)
from engine.geometry import build_tunnel_mesh
from engine.scenario import default_scenario
mesh = build_tunnel_mesh(default_scenario().replace(
    mesh=default_scenario().mesh.__class__(size=0.08, obstacle_size=0.02)))
assert mesh.num_nodes > 50
assert not any(m.startswith(("PySide6", "app")) for m in sys.modules if sys.modules[m])
print("ok")
"""


def test_engine_imports_and_meshes_without_qt() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
