"""The training configuration: one JSON file saying what to train, on which data, how long."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data itself.

    ``model`` is the simulator's configuration (architecture and its constructor arguments) exactly
    as ``SimulatorConfig`` reads it, so a config file names the model the way a card does.
    ``batch_size`` is the *global* batch: under DDP each of W processes takes batch_size / W
    samples, which keeps the optimisation identical whatever the number of GPUs.

    Training stops at whichever comes first of ``epochs`` and ``time_minutes``; the learning-rate
    schedule (linear warm-up, then cosine decay to ``min_lr``) runs over the stopping criterion,
    so a time-budgeted run decays its rate over its minutes and a resumed run continues it.
    """

    model: dict[str, Any]
    data: str  # dataset folder; relative paths are relative to the config file
    batch_size: int = 8
    lr: float = 1e-3
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    warmup_steps: int = 200
    grad_clip: float = 1.0
    noise_std: float = 0.02  # input noise, in the simulator's normalised velocity units
    pushforward_steps: int = 0  # extra model steps (without gradient) before the loss step
    pushforward_prob: float = 0.0  # probability that a sample uses the pushforward steps
    epochs: int | None = None
    time_minutes: float | None = None
    bf16: bool = True  # autocast to bfloat16 on CUDA; ignored on the CPU
    compile: bool = False  # torch.compile the loss computation
    seed: int = 0
    log_every: int = 10  # optimizer steps between CSV log rows
    val_every: int = 200  # optimizer steps between validation rollouts (0: only at the end)
    val_steps: int = 50  # length of each validation rollout
    val_trajectories: int = 2  # how many validation trajectories to roll out
    cache_trajectories: int = 64  # trajectories kept in memory (least recently used dropped)
    min_trajectories: int = 1  # wait for this many training trajectories before starting
    wait_minutes: float = 10.0  # give up if they do not appear in this time
    # A trained model (zoo name or file pair) whose weights start the run, with a fresh optimizer
    # and schedule: fine-tuning a shipped model on new data, or giving a model another recipe.
    # ``model`` must name the same architecture; the weights' card supplies its arguments.
    init_weights: str | None = None
    base_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, dict) or not self.model:
            raise ConfigError("model: expected the simulator configuration as an object")
        positive_ints = ("batch_size", "log_every", "val_steps", "cache_trajectories")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: expected a positive whole number, got {value!r}")
        for name in (
            "warmup_steps",
            "pushforward_steps",
            "val_every",
            "val_trajectories",
            "min_trajectories",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: expected a whole number ≥ 0, got {value!r}")
        for name in ("lr", "min_lr", "weight_decay", "grad_clip", "noise_std", "wait_minutes"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ConfigError(f"{name}: expected a number ≥ 0, got {value!r}")
        if self.lr <= 0 or self.min_lr > self.lr:
            raise ConfigError("lr: must be positive and at least min_lr")
        if not 0.0 <= self.pushforward_prob <= 1.0:
            raise ConfigError(f"pushforward_prob: must lie in [0, 1], got {self.pushforward_prob}")
        if self.epochs is None and self.time_minutes is None:
            raise ConfigError("epochs / time_minutes: give at least one stopping criterion")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ConfigError(f"epochs: expected a positive whole number, got {self.epochs!r}")
        if self.init_weights is not None and (
            not isinstance(self.init_weights, str) or not self.init_weights.strip()
        ):
            raise ConfigError(
                f"init_weights: expected a model name or path, got {self.init_weights!r}"
            )
        if self.time_minutes is not None and not self.time_minutes > 0:
            raise ConfigError(f"time_minutes: must be positive, got {self.time_minutes!r}")

    def _from_config_dir(self, value: str) -> Path:
        """A path the config file gives: relative ones are relative to the file."""
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    @property
    def data_dir(self) -> Path:
        return self._from_config_dir(self.data)

    @property
    def init_path(self) -> str | Path | None:
        """``init_weights`` as ``Simulator.load`` takes it: a bare name stays a zoo name."""
        if self.init_weights is None or Path(self.init_weights).parent == Path("."):
            return self.init_weights
        return self._from_config_dir(self.init_weights)

    def replace(self, **changes: Any) -> TrainConfig:
        from dataclasses import replace

        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("base_dir")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"base_dir"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))}")
        missing = {"model", "data"} - set(data)
        if missing:
            raise ConfigError(f"missing required field(s) {', '.join(sorted(missing))}")
        return cls(**data, base_dir=base_dir)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path.name}: not valid JSON ({exc})") from None
        return cls.from_dict(data, base_dir=path.resolve().parent)
