"""Shape checks that turn a wrong input into a clear ValueError instead of a deep matmul error."""

from __future__ import annotations

import torch


def check_shape(name: str, t: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """Raise ValueError unless ``t`` has ``shape`` (``None`` matches any size)."""
    ok = t.dim() == len(shape) and all(
        s is None or s == d for s, d in zip(shape, t.shape, strict=False)
    )
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {list(t.shape)}")


def check_edges(name: str, edge_index: torch.Tensor, num_nodes: int) -> None:
    """Edge index [2, E] of integers, with indices in [0, num_nodes)."""
    check_shape(name, edge_index, (2, None))
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must hold integers, got {edge_index.dtype}")
    # range check only on eager CPU tensors: on a GPU it would sync, under compile it would
    # break the graph
    on_cpu = edge_index.device.type == "cpu" and edge_index.numel()
    on_cpu = on_cpu and not torch.compiler.is_compiling()
    if on_cpu and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"{name} refers to nodes outside [0, {num_nodes})")
