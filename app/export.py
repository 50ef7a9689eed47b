"""Writing a run to disk: the engine's VTU/PVD and XDMF writers, plus CSV tables and movies.

Qt-free, so the scripted mode and the tests use exactly what the Export dialog uses. Long writers
take ``progress(done, total)`` and ``cancel()`` callbacks.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.frame_store import History
from engine.data.trajectory import Trajectory
from engine.frame import Frame
from engine.geometry.mesh import TunnelMesh
from engine.scenario import Scenario

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]

RUN_STEM = "run"
MOVIE_SUFFIXES = ("mp4", "gif")


@dataclass(frozen=True)
class ExportOptions:
    """What to write, and where; the Export dialog and the scripted ``--export`` both fill one."""

    folder: Path
    current_frame_only: bool = False
    vtk: bool = True  # VTU per frame + PVD
    xdmf: bool = False
    csv: bool = True  # forces, and probes when there are any
    png: bool = True  # the viewport as shown
    movies: tuple[str, ...] = ()  # any of MOVIE_SUFFIXES
    movie_fps: float = 25.0


def as_trajectory(
    mesh: TunnelMesh, frames: list[Frame], scenario: Scenario, attrs: dict[str, Any] | None = None
) -> Trajectory:
    return Trajectory.from_frames(mesh, frames, scenario=scenario.to_dict(), attrs=attrs)


def export_vtk_series(
    traj: Trajectory,
    out_dir: Path,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    stem: str = RUN_STEM,
) -> Path:
    """``<stem>_<step>.vtu`` per frame and ``<stem>.pvd`` listing them (ParaView opens the PVD)."""
    from engine.io.vtk import export_series

    out_dir.mkdir(parents=True, exist_ok=True)
    return export_series(traj, out_dir, progress=progress, cancel=cancel, stem=stem)


def export_xdmf(
    traj: Trajectory,
    out_dir: Path,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    stem: str = RUN_STEM,
) -> Path:
    from engine.io.vtk import export_xdmf as write_xdmf

    out_dir.mkdir(parents=True, exist_ok=True)
    return write_xdmf(traj, out_dir / f"{stem}.xdmf", progress=progress, cancel=cancel)


def write_forces_csv(history: History, path: Path) -> Path:
    """One row per step: time, then c_D, c_L, drag, lift of each obstacle."""
    n_obs = history.coefficients.shape[1]
    header = ["time"]
    for i in range(1, n_obs + 1):
        header += [f"c_D_{i}", f"c_L_{i}", f"drag_{i}", f"lift_{i}"]
    rows = (
        np.column_stack(
            [history.time]
            + [
                np.column_stack([history.coefficients[:, i], history.forces[:, i]])
                for i in range(n_obs)
            ]
        )
        if len(history.time)
        else np.zeros((0, len(header)))
    )
    _write_table(path, header, rows)
    return path


def write_probes_csv(
    frames: list[Frame], probes: list[tuple[float, float]], nodes: np.ndarray, path: Path
) -> Path:
    """One row per stored frame: time, then u, v, p at the mesh vertex nearest each probe."""
    header = ["time"]
    for i, (x, y) in enumerate(probes, start=1):
        header += [f"u_{i}({x:.4g};{y:.4g})", f"v_{i}", f"p_{i}"]
    rows = np.array(
        [[f.time, *np.column_stack([f.u[nodes], f.v[nodes], f.p[nodes]]).ravel()] for f in frames]
    ).reshape(len(frames), len(header))
    _write_table(path, header, rows)
    return path


def _write_table(path: Path, header: list[str], rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([f"{v:.9g}" for v in row] for row in rows)


def write_movie(
    images: Iterable[np.ndarray],
    path: Path,
    fps: float,
    total: int,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Path | None:
    """Encode RGB images [H, W, 3] to MP4 (imageio-ffmpeg) or GIF, by the suffix of ``path``.

    Returns None when cancelled; the partial file is removed so it is not mistaken for a movie.
    """
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"fps": fps}
    if path.suffix.lower() == ".mp4":
        kwargs |= {"codec": "libx264", "quality": 7, "macro_block_size": 2}
    else:
        kwargs = {"duration": 1000.0 / fps, "loop": 0}
    with imageio.get_writer(path, **kwargs) as writer:
        for done, image in enumerate(images, start=1):
            if cancel is not None and cancel():
                break
            writer.append_data(np.ascontiguousarray(image[..., :3]))
            if progress is not None:
                progress(done, total)
        else:
            return path
    path.unlink(missing_ok=True)
    return None
