"""Node types, numbered as in MeshGraphNets' public datasets so their data imports unchanged."""

from __future__ import annotations

from enum import IntEnum


class NodeType(IntEnum):
    NORMAL = 0
    OBSTACLE = 1
    AIRFOIL = 2
    HANDLE = 3
    INFLOW = 4
    OUTFLOW = 5
    WALL_BOUNDARY = 6


NUM_NODE_TYPES = 9  # width of the one-hot encoding used by MeshGraphNets (two slots unused)
