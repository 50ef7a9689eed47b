"""The command line maps each command to the module that registers it, and loads only that."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from engine.cli import COMMANDS


def test_every_command_is_registered_by_its_module() -> None:
    for module in dict.fromkeys(COMMANDS.values()):
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).register(sub)
        registered = set(sub.choices)
        mapped = {name for name, owner in COMMANDS.items() if owner == module}
        assert registered == mapped, module


def test_a_geometry_command_does_not_import_torch() -> None:
    code = (
        "from engine.cli import build_parser\nbuild_parser('mesh').parse_args(['mesh', '--help'])\n"
    )
    # --help exits: an atexit hook reports whether torch was loaded up to that point.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'))\n" + code
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "usage:" in out.stdout
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout[-300:]
