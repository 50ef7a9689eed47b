"""Slipstream's engine: scenarios, meshing, the reference solver, learned models and their I/O.

Qt-free by design (DESIGN.md): everything here runs headless through ``python -m engine``.
"""

__version__ = "0.1.0"


class EngineWarning(UserWarning):
    """A warning raised by the engine; the test suite turns these into errors."""
