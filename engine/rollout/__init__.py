"""Learned rollouts: a trained simulator stepped through a scenario, frame by frame.

The package exports nothing itself: ``engine.rollout.commands`` is imported to build the CLI,
which must not load torch, so callers import ``engine.rollout.rollout.rollout``.
"""
