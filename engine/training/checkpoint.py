"""Training checkpoints without pickle: a folder of safetensors files and JSON.

Layout of a checkpoint folder::

    model.safetensors, model.json     the simulator (weights + card), loadable on its own
    optimizer-NN.safetensors          optimizer tensors (Adam moments), in shards of ≤ 15 MiB
    trainer.json                      progress, optimizer scalars and groups, config

Shards keep every file under the 16 MiB a campaign job may hand back; the model's own files are
written by ``Simulator.save`` so a checkpoint is also a shippable model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from engine.errors import ModelError

MODEL_STEM = "model"
STATE_NAME = "trainer.json"
SHARD_BYTES = 15 * 2**20


@dataclass
class TrainerState:
    """Progress a resumed run continues from; ``train_seconds`` drives time-budget schedules."""

    step: int = 0
    epoch: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    gpu_minutes: float = 0.0  # device time summed over processes (the card reports it)
    jobs: int = 0  # training runs that contributed; campaigns derive fresh data seeds from it
    config: dict[str, Any] = field(default_factory=dict)


def optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into named tensors and a JSON-able remainder."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            name = f"{index}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value.detach().to("cpu").contiguous()
            else:
                scalars[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_tensors`."""
    per_param: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *meta["scalars"].items()]:
        index, key = name.split(".", 1)
        per_param.setdefault(int(index), {})[key] = value
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()}
        for group in meta["param_groups"]
    ]
    return {"state": per_param, "param_groups": groups}


def _save_shards(tensors: dict[str, torch.Tensor], directory: Path, stem: str) -> list[str]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    names = []
    for i, shard in enumerate(shards):
        name = f"{stem}-{i:02d}.safetensors"
        save_file(shard, str(directory / name))
        names.append(name)
    return names


def save_checkpoint(
    directory: str | Path, simulator: Any, optimizer: torch.optim.Optimizer, state: TrainerState
) -> Path:
    """Write a complete checkpoint; ``trainer.json`` goes last, so its presence means complete."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    simulator.save(directory / MODEL_STEM)
    tensors, meta = optimizer_tensors(optimizer.state_dict())
    shards = _save_shards(tensors, directory, "optimizer")
    payload = {"trainer": asdict(state), "optimizer": meta, "optimizer_shards": shards}
    tmp = directory / f"{STATE_NAME}.partial"
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, directory / STATE_NAME)
    return directory


@dataclass
class Checkpoint:
    """A checkpoint read back: the model path to load, the optimizer state and the progress."""

    model_path: Path
    optimizer: dict[str, Any]
    state: TrainerState


def read_checkpoint(directory: str | Path) -> Checkpoint:
    directory = Path(directory)
    path = directory / STATE_NAME
    try:
        payload = json.loads(path.read_text())
        tensors: dict[str, torch.Tensor] = {}
        for name in payload["optimizer_shards"]:
            tensors |= load_file(str(directory / name))
        state = TrainerState(**payload["trainer"])
        optimizer = optimizer_state(tensors, payload["optimizer"])
    except FileNotFoundError as exc:
        raise ModelError(
            f"{directory}: not a complete checkpoint ({exc.filename} missing)"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelError(f"{directory}: unreadable checkpoint ({exc})") from None
    return Checkpoint(directory / MODEL_STEM, optimizer, state)
