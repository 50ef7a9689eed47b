"""Learning rate: linear warm-up, then cosine decay over the run's progress."""

from __future__ import annotations

import math


def learning_rate(
    step: int, progress: float, *, peak: float, floor: float, warmup_steps: int
) -> float:
    """The rate for optimizer ``step`` when the run is ``progress`` (0…1) of the way through.

    Warm-up counts steps because its job (keeping Adam's first, poorly estimated moments from
    kicking the weights) is about steps; the decay follows ``progress`` so a run bounded by
    minutes rather than epochs still ends at the floor exactly when its time runs out.
    """
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * p))
