"""Learned rollouts: a trained simulator stepped through a scenario, frame by frame."""

from engine.rollout.rollout import rollout

__all__ = ["rollout"]
