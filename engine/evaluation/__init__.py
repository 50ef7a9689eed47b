"""Accuracy of learned rollouts against the reference solver: metrics, compare and evaluate."""
