"""Learned rollouts: a trained simulator stepped through a scenario, frame by frame."""

from __future__ import annotations

from typing import Any

__all__ = ["rollout"]


def __getattr__(name: str) -> Any:
    # Lazy: ``engine.rollout.commands`` is imported to build the CLI, which must not load torch.
    if name == "rollout":
        from engine.rollout.rollout import rollout

        return rollout
    raise AttributeError(name)
