"""Trajectories and datasets on disk (docs/data-format.md)."""
