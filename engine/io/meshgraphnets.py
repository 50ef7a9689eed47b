"""MeshGraphNets' public datasets (``meta.json`` + ``<split>.tfrecord``) as our Trajectories.

Each record holds one trajectory; every feature is one raw array whose dtype and shape ``meta.json``
gives (-1 stands for the node or cell count). Static features carry a leading axis of 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.io.tfrecord import encode_example, parse_example, read_records, write_records

META_NAME = "meta.json"
DEFAULT_DT = 0.01
REQUIRED_FIELDS = ("mesh_pos", "cells", "node_type", "velocity", "pressure")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # "static" or "dynamic"
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class Meta:
    """What ``meta.json`` says about every record of the dataset."""

    features: dict[str, FeatureSpec]
    dt: float
    trajectory_length: int | None

    @classmethod
    def load(cls, folder: str | Path) -> Meta:
        path = Path(folder) / META_NAME
        try:
            raw = json.loads(path.read_text())
            specs = {
                name: FeatureSpec(
                    name, str(f["type"]), tuple(int(d) for d in f["shape"]), np.dtype(f["dtype"])
                )
                for name, f in raw["features"].items()
            }
            names = raw.get("field_names", list(specs))
            length = raw.get("trajectory_length")
            meta = cls(
                features={name: specs[name] for name in names},
                dt=float(raw.get("dt", DEFAULT_DT)),
                trajectory_length=None if length is None else int(length),
            )
        except FileNotFoundError:
            raise DataFormatError(
                f"{path}: no such file (a MeshGraphNets dataset needs one)"
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: malformed MeshGraphNets metadata ({exc!r})") from None
        missing = [name for name in REQUIRED_FIELDS if name not in meta.features]
        if missing:
            raise DataFormatError(f"{path}: no {', '.join(missing)} among the features")
        odd = [s.name for s in meta.features.values() if s.kind not in ("static", "dynamic")]
        if odd:
            raise DataFormatError(
                f"{path}: feature(s) {', '.join(odd)} are neither static nor dynamic "
                "(variable-length meshes are not supported)"
            )
        return meta

    def to_json(self) -> dict[str, Any]:
        return {
            "dt": self.dt,
            "trajectory_length": self.trajectory_length,
            "field_names": list(self.features),
            "features": {
                s.name: {"type": s.kind, "shape": list(s.shape), "dtype": s.dtype.name}
                for s in self.features.values()
            },
        }


def _decode(spec: FeatureSpec, values: list[bytes], where: str) -> np.ndarray:
    if len(values) != 1:
        raise DataFormatError(f"{where}: feature {spec.name} holds {len(values)} values, not 1")
    raw = values[0]
    if len(raw) % spec.dtype.itemsize:
        raise DataFormatError(f"{where}: feature {spec.name} is not a whole number of {spec.dtype}")
    try:
        array = np.frombuffer(raw, dtype=spec.dtype).reshape(spec.shape)
    except ValueError:
        raise DataFormatError(
            f"{where}: feature {spec.name} has {len(raw) // spec.dtype.itemsize} values, "
            f"which do not fit the shape {list(spec.shape)} of meta.json"
        ) from None
    return array[0] if spec.kind == "static" else array


def record_to_trajectory(meta: Meta, record: bytes, where: str) -> Trajectory:
    try:
        features = parse_example(record)
    except ValueError as exc:
        raise DataFormatError(f"{where}: not a tf.train.Example ({exc})") from None
    missing = [name for name in REQUIRED_FIELDS if name not in features]
    if missing:
        raise DataFormatError(f"{where}: missing feature(s) {', '.join(missing)}")
    arrays = {name: _decode(meta.features[name], features[name], where) for name in REQUIRED_FIELDS}
    velocity = arrays["velocity"].astype(np.float32)
    steps = velocity.shape[0]
    traj = Trajectory(
        mesh_pos=arrays["mesh_pos"].astype(np.float64),
        cells=arrays["cells"].astype(np.int64),
        node_type=arrays["node_type"].reshape(-1).astype(np.int64),
        velocity=velocity,
        pressure=arrays["pressure"].reshape(steps, -1).astype(np.float32),
        time=meta.dt * np.arange(steps, dtype=np.float64),
        forces=np.zeros((steps, 0, 2)),
        coefficients=np.zeros((steps, 0, 2)),
        attrs={"source": "meshgraphnets-tfrecord", "origin": where},
    )
    try:
        return traj.validate()
    except DataFormatError as exc:
        raise DataFormatError(f"{where}: {exc}") from None


def tfrecord_path(folder: str | Path, split: str) -> Path:
    path = Path(folder) / f"{split}.tfrecord"
    if not path.is_file():
        found = sorted(p.stem for p in Path(folder).glob("*.tfrecord"))
        raise DataFormatError(
            f"{path}: no such split file (found: {', '.join(found) or 'no .tfrecord files'})"
        )
    return path


def read_meshgraphnets(
    folder: str | Path, split: str = "train", limit: int | None = None
) -> Iterator[Trajectory]:
    """Yield the trajectories of ``<folder>/<split>.tfrecord``, at most ``limit`` of them."""
    meta = Meta.load(folder)
    path = tfrecord_path(folder, split)
    if limit is not None and limit <= 0:
        return
    for index, record in enumerate(read_records(path)):
        yield record_to_trajectory(meta, record, f"{path.name} record {index}")
        if limit is not None and index + 1 >= limit:
            return


def write_meshgraphnets(
    folder: str | Path, split: str, trajectories: Iterable[Trajectory], dt: float = DEFAULT_DT
) -> Path:
    """Write trajectories (all of the same length) in MeshGraphNets' schema, int32/float32 as in
    cylinder_flow; returns the ``.tfrecord`` path. The original training code reads the result."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    trajectories = list(trajectories)
    if not trajectories:
        raise DataFormatError("nothing to write: no trajectories")
    steps = trajectories[0].num_steps
    if any(t.num_steps != steps for t in trajectories):
        raise DataFormatError("MeshGraphNets' schema needs trajectories of one length")
    f32, i32 = np.dtype(np.float32), np.dtype(np.int32)
    specs = [
        FeatureSpec("cells", "static", (1, -1, 3), i32),
        FeatureSpec("mesh_pos", "static", (1, -1, 2), f32),
        FeatureSpec("node_type", "static", (1, -1, 1), i32),
        FeatureSpec("velocity", "dynamic", (steps, -1, 2), f32),
        FeatureSpec("pressure", "dynamic", (steps, -1, 1), f32),
    ]
    meta = Meta({s.name: s for s in specs}, dt=dt, trajectory_length=steps)
    (folder / META_NAME).write_text(json.dumps(meta.to_json(), indent=1) + "\n")

    def records() -> Iterator[bytes]:
        for t in trajectories:
            arrays = {
                "cells": t.cells,
                "mesh_pos": t.mesh_pos,
                "node_type": t.node_type,
                "velocity": t.velocity,
                "pressure": t.pressure,
            }
            yield encode_example(
                {s.name: [np.ascontiguousarray(arrays[s.name], s.dtype).tobytes()] for s in specs}
            )

    return write_records(folder / f"{split}.tfrecord", records())
