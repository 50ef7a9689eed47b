"""``python -m engine import`` (other solvers' results -> our HDF5) and ``export`` (-> ParaView)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine.errors import DataFormatError

if TYPE_CHECKING:
    from engine.data.trajectory import Trajectory

SourceKind = Literal["openfoam", "meshgraphnets", "vtu"]


def register(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser(
        "import",
        help="convert VTU/PVD series, a 2D OpenFOAM case or a MeshGraphNets dataset to HDF5",
        description=(
            "Convert SOURCE to Slipstream trajectories. SOURCE is a .pvd file, a .vtu file, a "
            "folder or quoted glob of .vtu files, an OpenFOAM case folder (with "
            "system/controlDict), or a MeshGraphNets dataset folder (meta.json + "
            "<split>.tfrecord). OUT ending in .h5 is one trajectory file; any other OUT is a "
            "dataset folder with a manifest."
        ),
    )
    imp.add_argument("source", help="file, folder or quoted glob to import")
    imp.add_argument("-o", "--output", type=Path, required=True, help="OUT.h5 or a dataset folder")
    imp.add_argument("--split", default="train", help="MeshGraphNets split to read (default train)")
    imp.add_argument("--limit", type=int, help="import at most this many MeshGraphNets records")
    imp.add_argument(
        "--dt", type=float, default=0.01, help="time step for .vtu files that state no times"
    )
    imp.set_defaults(run=run_import)

    exp = subparsers.add_parser(
        "export",
        help="write a trajectory as a VTU + PVD series (or XDMF) for ParaView",
        description="Write TRAJ.h5 into DIR as <stem>_<step>.vtu + <stem>.pvd, or with --xdmf as "
        "<stem>.xdmf + <stem>.h5. Point data: velocity, u, v, pressure, speed, vorticity, "
        "node_type.",
    )
    exp.add_argument("trajectory", type=Path, help="trajectory .h5 file")
    exp.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    exp.add_argument("--xdmf", action="store_true", help="write XDMF + HDF5 instead of VTU + PVD")
    exp.add_argument("--every", type=int, default=1, help="keep every K-th frame (default 1)")
    exp.set_defaults(run=run_export)


def detect_source(source: str) -> SourceKind:
    """Which importer reads ``source``, from its shape on disk."""
    from engine.io.openfoam import is_openfoam_case

    path = Path(source)
    if path.is_dir():
        if is_openfoam_case(path):
            return "openfoam"
        if (path / "meta.json").is_file():
            return "meshgraphnets"
        if any(path.glob("*.vtu")):
            return "vtu"
        raise DataFormatError(
            f"{path}: not an OpenFOAM case (system/controlDict), a MeshGraphNets dataset "
            "(meta.json) or a folder of .vtu files"
        )
    if path.suffix.lower() in (".pvd", ".vtu") or any(c in source for c in "*?["):
        return "vtu"
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or folder")
    raise DataFormatError(f"{path}: cannot import {path.suffix or 'this'} files (.pvd, .vtu)")


def _trajectories(args: argparse.Namespace, kind: SourceKind) -> Iterator[Trajectory]:
    if kind == "openfoam":
        from engine.io.openfoam import read_openfoam_case

        yield read_openfoam_case(args.source)
    elif kind == "meshgraphnets":
        from engine.io.meshgraphnets import read_meshgraphnets

        yield from read_meshgraphnets(args.source, args.split, args.limit)
    else:
        from engine.io.vtu_series import read_vtu_series

        yield read_vtu_series(args.source, dt=args.dt)


def run_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    kind = detect_source(args.source)
    out: Path = args.output
    stem = f"{args.split}" if kind == "meshgraphnets" else Path(args.source.rstrip("/")).stem
    stem = stem.replace("*", "").replace("?", "") or "imported"
    if out.suffix.lower() == ".h5":
        trajectories = _trajectories(args, kind)
        traj = next(trajectories, None)
        if traj is None:
            raise DataFormatError(f"{args.source}: no trajectories to import")
        if kind == "meshgraphnets" and next(trajectories, None) is not None:
            raise DataFormatError(
                f"{args.source} holds several trajectories: give a folder as -o, or --limit 1"
            )
        traj.save(out)
        print(f"{kind}: {traj.num_steps} frames x {traj.num_nodes} nodes -> {out}")
        return 0

    from engine.data.dataset import open_dataset

    out.mkdir(parents=True, exist_ok=True)
    count = 0
    bar = tqdm(_trajectories(args, kind), total=args.limit, unit="traj", desc=f"import {kind}")
    for count, traj in enumerate(bar, start=1):
        traj.save(out / (f"{stem}_{count - 1:05d}.h5" if kind == "meshgraphnets" else f"{stem}.h5"))
    dataset = open_dataset(out, create=True)
    print(f"{kind}: {count} trajectories -> {out} (dataset of {len(dataset)})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.data.trajectory import Trajectory
    from engine.io.vtk import export_series, export_xdmf

    traj = Trajectory.load(args.trajectory)
    stem = args.trajectory.stem
    with tqdm(total=len(range(0, traj.num_steps, max(args.every, 1))), unit="frame") as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        if args.xdmf:
            path = export_xdmf(
                traj, args.output / f"{stem}.xdmf", every=args.every, progress=progress
            )
        else:
            path = export_series(traj, args.output, every=args.every, progress=progress, stem=stem)
    print(f"wrote {path}")
    return 0
