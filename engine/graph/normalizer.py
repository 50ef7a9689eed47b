"""Running mean/std normaliser; its statistics are buffers, so they travel in the weights file."""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """Per-feature standardisation with statistics accumulated from training batches.

    Statistics merge batch by batch with Chan's parallel update of (count, mean, M2), which stays
    accurate in float32 over millions of samples (float64 is not available on every device).
    Accumulation stops after ``max_accumulations`` batches, as in MeshGraphNets, so late training
    sees fixed statistics.
    """

    def __init__(self, size: int, max_accumulations: int = 10**6, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.size = size
        self.max_accumulations = max_accumulations
        self.epsilon = epsilon
        self.register_buffer("count", torch.zeros((), dtype=torch.float32))
        self.register_buffer("accumulations", torch.zeros((), dtype=torch.float32))
        self.register_buffer("running_mean", torch.zeros(size))
        self.register_buffer("running_m2", torch.zeros(size))

    @property
    def mean(self) -> torch.Tensor:
        return self.running_mean

    @property
    def std(self) -> torch.Tensor:
        """Standard deviation, 1 before any data was seen, never below ``epsilon``."""
        # torch.where instead of an if: no host sync, no graph break under torch.compile
        var = self.running_m2 / self.count.clamp_min(1.0)
        std = torch.sqrt(var).clamp_min(self.epsilon)
        return torch.where(self.count >= 2, std, torch.ones_like(std))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.size:
            raise ValueError(f"Normalizer expects [num, {self.size}], got {list(x.shape)}")

    @torch.no_grad()
    def accumulate(self, x: torch.Tensor) -> None:
        """Merge the rows of ``x`` [num, size] into the running statistics."""
        self._check(x)
        if x.shape[0] == 0 or self.accumulations >= self.max_accumulations:
            return
        x = x.detach().float()
        n_b = float(x.shape[0])
        mean_b = x.mean(dim=0)
        m2_b = ((x - mean_b) ** 2).sum(dim=0)
        n_a = self.count.clone()
        total = n_a + n_b
        delta = mean_b - self.running_mean
        self.running_mean += delta * (n_b / total)
        self.running_m2 += m2_b + delta**2 * (n_a * n_b / total)
        self.count.fill_(total)
        self.accumulations += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x`` [num, size]."""
        self._check(x)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`forward`."""
        self._check(y)
        return y * self.std.to(y.dtype) + self.mean.to(y.dtype)
