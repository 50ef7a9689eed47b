"""One simulated run in memory and as HDF5, with MeshGraphNets' field names.

Written to a temporary name and renamed when complete, so a crash never leaves a file that looks
finished (the data generator skips files that exist).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.errors import DataFormatError
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh

SCHEMA_VERSION = 1


@dataclass
class Trajectory:
    mesh_pos: np.ndarray  # [N, 2] float64
    cells: np.ndarray  # [C, 3] int64
    node_type: np.ndarray  # [N] int64
    velocity: np.ndarray  # [T, N, 2] float32
    pressure: np.ndarray  # [T, N] float32
    time: np.ndarray  # [T] float64
    forces: np.ndarray  # [T, n_obstacles, 2] float64 (drag, lift) per unit depth
    coefficients: np.ndarray  # [T, n_obstacles, 2] float64 (c_D, c_L)
    scenario: dict[str, Any] = field(default_factory=dict)  # the scenario JSON object
    attrs: dict[str, Any] = field(default_factory=dict)  # provenance: solver, wall time, ...

    @property
    def num_steps(self) -> int:
        return int(self.velocity.shape[0])

    @property
    def num_nodes(self) -> int:
        return int(self.mesh_pos.shape[0])

    def frame(self, t: int) -> Frame:
        return Frame(
            step=t,
            time=float(self.time[t]),
            u=self.velocity[t, :, 0],
            v=self.velocity[t, :, 1],
            p=self.pressure[t],
            forces=self.forces[t],
            coefficients=self.coefficients[t],
        )

    @classmethod
    def from_frames(
        cls,
        mesh: TunnelMesh,
        frames: Iterable[Frame],
        scenario: dict[str, Any] | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> Trajectory:
        frames = list(frames)
        if not frames:
            raise DataFormatError("a trajectory needs at least one frame")
        return cls(
            mesh_pos=np.asarray(mesh.points, dtype=np.float64),
            cells=np.asarray(mesh.cells, dtype=np.int64),
            node_type=np.asarray(mesh.node_type, dtype=np.int64),
            velocity=np.stack([np.stack([f.u, f.v], axis=-1) for f in frames]).astype(np.float32),
            pressure=np.stack([f.p for f in frames]).astype(np.float32),
            time=np.array([f.time for f in frames], dtype=np.float64),
            forces=np.stack([f.forces for f in frames]).astype(np.float64),
            coefficients=np.stack([f.coefficients for f in frames]).astype(np.float64),
            scenario=dict(scenario or {}),
            attrs=dict(attrs or {}),
        )

    def validate(self) -> Trajectory:
        n, t = self.num_nodes, self.num_steps
        checks = {
            "mesh_pos": (self.mesh_pos.shape == (n, 2)),
            "cells": (self.cells.ndim == 2 and self.cells.shape[1] == 3),
            "node_type": (self.node_type.shape == (n,)),
            "velocity": (self.velocity.shape == (t, n, 2)),
            "pressure": (self.pressure.shape == (t, n)),
            "time": (self.time.shape == (t,)),
            "forces": (self.forces.ndim == 3 and self.forces.shape[0] == t),
            "coefficients": (self.coefficients.shape == self.forces.shape),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise DataFormatError(f"trajectory fields with inconsistent shapes: {', '.join(bad)}")
        if self.cells.size and (self.cells.min() < 0 or self.cells.max() >= n):
            raise DataFormatError("cells refer to vertices that do not exist")
        return self

    def save(self, path: str | Path) -> Path:
        """Write atomically: to ``<path>.partial``, then rename."""
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["scenario"] = json.dumps(self.scenario)
            f.attrs["attrs"] = json.dumps(self.attrs)
            f.create_dataset("mesh_pos", data=self.mesh_pos)
            f.create_dataset("cells", data=self.cells)
            f.create_dataset("node_type", data=self.node_type)
            f.create_dataset("velocity", data=self.velocity, compression="gzip", compression_opts=1)
            f.create_dataset("pressure", data=self.pressure, compression="gzip", compression_opts=1)
            f.create_dataset("time", data=self.time)
            f.create_dataset("forces", data=self.forces)
            f.create_dataset("coefficients", data=self.coefficients)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        path = Path(path)
        try:
            with h5py.File(path, "r") as f:
                version = int(f.attrs.get("schema_version", 0))
                if version > SCHEMA_VERSION:
                    raise DataFormatError(
                        f"{path.name}: schema version {version} is newer than this Slipstream "
                        f"understands ({SCHEMA_VERSION})"
                    )
                missing = [
                    k
                    for k in ("mesh_pos", "cells", "node_type", "velocity", "pressure")
                    if k not in f
                ]
                if missing:
                    raise DataFormatError(f"{path.name}: missing dataset(s) {', '.join(missing)}")
                t = f["velocity"].shape[0]
                n_obs = f["forces"].shape[1] if "forces" in f else 0
                traj = cls(
                    mesh_pos=f["mesh_pos"][...].astype(np.float64),
                    cells=f["cells"][...].astype(np.int64),
                    node_type=f["node_type"][...].astype(np.int64).reshape(-1),
                    velocity=f["velocity"][...].astype(np.float32),
                    pressure=f["pressure"][...].astype(np.float32).reshape(t, -1),
                    time=f["time"][...] if "time" in f else np.arange(t, dtype=np.float64),
                    forces=f["forces"][...] if "forces" in f else np.zeros((t, n_obs, 2)),
                    coefficients=(
                        f["coefficients"][...] if "coefficients" in f else np.zeros((t, n_obs, 2))
                    ),
                    scenario=json.loads(f.attrs.get("scenario", "{}")),
                    attrs=json.loads(f.attrs.get("attrs", "{}")),
                )
        except OSError as exc:
            raise DataFormatError(f"{path}: not a readable HDF5 trajectory ({exc})") from None
        return traj.validate()
