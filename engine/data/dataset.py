"""A dataset: a folder of trajectory ``*.h5`` files plus a ``manifest.json`` that describes them.

The trainer reads a dataset while the generator is still writing it, so split membership must not
change as files arrive: each file's split is a pure function of (seed, file name), never of how
many files exist. The manifest caches a small summary per file so refreshing only opens new files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from engine.errors import DataFormatError, ScenarioError
from engine.scenario import Scenario

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")
SPLIT_FRACTIONS: dict[Split, float] = {"train": 0.8, "valid": 0.1, "test": 0.1}


def split_of(name: str, seed: int) -> Split:
    """The split a file belongs to: a stable hash of the seed and its name, 80/10/10."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    x = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for split in SPLITS:
        edge += SPLIT_FRACTIONS[split]
        if x < edge:
            return split
    return SPLITS[-1]


@dataclass(frozen=True)
class TrajectorySummary:
    """What the manifest records about one file (read from its attributes and shapes only)."""

    num_nodes: int
    num_steps: int
    dt: float
    num_obstacles: int
    shapes: tuple[str, ...]
    reynolds: float | None  # None for imported data without a scenario
    mean_speed: float | None

    @classmethod
    def read(cls, path: Path) -> TrajectorySummary:
        try:
            with h5py.File(path, "r") as f:
                num_nodes = int(f["mesh_pos"].shape[0])
                num_steps = int(f["velocity"].shape[0])
                time = f["time"][...] if "time" in f else np.arange(num_steps, dtype=float)
                scenario_dict = json.loads(f.attrs.get("scenario", "{}"))
        except (OSError, KeyError) as exc:
            raise DataFormatError(f"{path.name}: not a readable trajectory ({exc})") from None
        dt = float(np.median(np.diff(time))) if num_steps > 1 else 0.0
        reynolds = mean_speed = None
        shapes: tuple[str, ...] = ()
        num_obstacles = 0
        if scenario_dict:
            try:
                scenario = Scenario.from_dict(scenario_dict)
            except ScenarioError as exc:
                raise DataFormatError(f"{path.name}: invalid scenario ({exc})") from None
            reynolds = scenario.reynolds
            mean_speed = scenario.inflow.mean_speed
            shapes = tuple(o.shape for o in scenario.obstacles)
            num_obstacles = len(scenario.obstacles)
        return cls(num_nodes, num_steps, dt, num_obstacles, shapes, reynolds, mean_speed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shapes"] = list(self.shapes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrajectorySummary:
        return cls(**{**d, "shapes": tuple(d["shapes"])})


def _span(values: list[float]) -> list[float] | None:
    return [min(values), max(values)] if values else None


class Dataset:
    """A trajectory folder; ``refresh()`` picks up files finished since the last look."""

    def __init__(self, root: Path, seed: int, summaries: dict[str, TrajectorySummary]) -> None:
        self.root = root
        self.seed = seed
        self._summaries = dict(sorted(summaries.items()))

    @property
    def manifest(self) -> dict[str, Any]:
        s = self._summaries.values()
        splits: dict[str, list[str]] = {split: [] for split in SPLITS}
        for name in self._summaries:
            splits[split_of(name, self.seed)].append(name)
        return {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "seed": self.seed,
            "count": len(self._summaries),
            "splits": splits,
            "ranges": {
                "reynolds": _span([x.reynolds for x in s if x.reynolds is not None]),
                "mean_speed": _span([x.mean_speed for x in s if x.mean_speed is not None]),
                "num_nodes": _span([x.num_nodes for x in s]),
                "num_steps": _span([x.num_steps for x in s]),
                "dt": _span([x.dt for x in s]),
                "num_obstacles": _span([x.num_obstacles for x in s]),
                "shapes": sorted({shape for x in s for shape in x.shapes}),
            },
            "trajectories": {name: x.to_dict() for name, x in self._summaries.items()},
        }

    def __len__(self) -> int:
        return len(self._summaries)

    def files(self, split: Split | None = None) -> list[Path]:
        """Trajectory paths of one split (all when ``split`` is None), sorted by name."""
        if split is not None and split not in SPLITS:
            raise DataFormatError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return [
            self.root / name
            for name in self._summaries
            if split is None or split_of(name, self.seed) == split
        ]

    def refresh(self) -> int:
        """Add finished files that appeared since; write the manifest; return how many were new."""
        present = {p.name for p in self.root.glob("*.h5")}
        new = sorted(present - set(self._summaries))
        for name in new:
            self._summaries[name] = TrajectorySummary.read(self.root / name)
        gone = set(self._summaries) - present
        for name in gone:
            del self._summaries[name]
        self._summaries = dict(sorted(self._summaries.items()))
        if new or gone or not (self.root / MANIFEST_NAME).exists():
            self.write_manifest()
        return len(new)

    def write_manifest(self) -> Path:
        """Atomically replace ``manifest.json`` (readers never see a half-written one)."""
        path = self.root / MANIFEST_NAME
        tmp = path.with_name(f"{MANIFEST_NAME}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(self.manifest, indent=1) + "\n")
        os.replace(tmp, path)
        return path


def open_dataset(root: str | Path, *, seed: int | None = None, create: bool = False) -> Dataset:
    """Open a dataset folder, reusing its manifest's summaries, and refresh it.

    ``seed`` fixes the split assignment of a new dataset; an existing manifest's seed wins unless
    one is given explicitly. ``create`` makes the folder when it does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        if not create:
            raise DataFormatError(f"{root}: no such dataset folder")
        root.mkdir(parents=True)
    summaries: dict[str, TrajectorySummary] = {}
    manifest_seed = 0
    path = root / MANIFEST_NAME
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
            version = int(manifest.get("schema_version", 0))
            manifest_seed = int(manifest.get("seed", 0))
            summaries = {
                name: TrajectorySummary.from_dict(d)
                for name, d in manifest.get("trajectories", {}).items()
            }
        except (json.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError) as exc:
            raise DataFormatError(f"{path}: unreadable manifest ({exc})") from None
        if version > MANIFEST_SCHEMA_VERSION:
            raise DataFormatError(
                f"{path}: manifest schema {version} is newer than this Slipstream understands"
            )
    dataset = Dataset(root, manifest_seed if seed is None else seed, summaries)
    if seed is not None and seed != manifest_seed and path.exists():
        dataset.write_manifest()
    dataset.refresh()
    return dataset
