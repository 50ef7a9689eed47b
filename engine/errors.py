"""Exceptions that carry a message meant for the user (the CLI and the app show them as-is)."""

from __future__ import annotations


class SlipstreamError(Exception):
    """Base of every error whose message is written for the user, not the developer."""


class ScenarioError(SlipstreamError, ValueError):
    """A scenario field is invalid. ``field`` names it, e.g. ``obstacles[1].radius``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Exceptions cross process-pool boundaries (datagen workers) by pickling their args.
        return (type(self), (self.field, self.message))


class GeometryError(SlipstreamError, ValueError):
    """A shape or geometry file cannot be turned into a valid obstacle outline or mesh."""


class MeshingError(SlipstreamError, RuntimeError):
    """gmsh could not mesh the tunnel."""


class DataFormatError(SlipstreamError, ValueError):
    """A trajectory, dataset or imported CFD file is malformed."""


class ModelError(SlipstreamError, ValueError):
    """A model file or card is missing, malformed, or does not fit the scenario."""


class DivergenceError(SlipstreamError, RuntimeError):
    """A rollout produced NaN/inf or a velocity blow-up; ``step`` is where it was detected."""

    def __init__(self, step: int, message: str) -> None:
        self.step = step
        self.message = message
        super().__init__(f"rollout diverged at step {step}: {message}")

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return (type(self), (self.step, self.message))


class ConfigError(SlipstreamError, ValueError):
    """A training or campaign configuration is missing, malformed or inconsistent."""
