"""A tiny OpenFOAM case written by hand (ASCII polyMesh + fields), imported as a Trajectory."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.trajectory import Trajectory
from engine.errors import DataFormatError
from engine.io.openfoam import read_openfoam_case
from engine.nodetypes import NodeType

NX, NY, LENGTH, HEIGHT = 3, 2, 3.0, 2.0


def foam_file(path: Path, cls: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "FoamFile\n{\n    version 2.0;\n    format ascii;\n"
    path.write_text(f"{header}    class {cls};\n    object {path.name};\n}}\n\n{body}")


def foam_list(items: list[str]) -> str:
    return f"{len(items)}\n(\n" + "\n".join(items) + "\n)\n"


def cell_centres() -> tuple[np.ndarray, np.ndarray]:
    x = (np.arange(NX) + 0.5) * LENGTH / NX
    y = (np.arange(NY) + 0.5) * HEIGHT / NY
    cx, cy = np.meshgrid(x, y)
    return cx.ravel(), cy.ravel()  # cell i + NX * j


def write_case(root: Path, times: tuple[float, ...] = (0.0, 0.5), nz: int = 1) -> Path:
    """A structured NX x NY x nz hexahedral case: owner/neighbour in OpenFOAM's upper-triangular
    order, face normals from owner to neighbour and out of the domain on the patches."""

    def pid(i: int, j: int, k: int) -> int:
        return i + (NX + 1) * (j + (NY + 1) * k)

    def cid(i: int, j: int, k: int) -> int:
        return i + NX * (j + NY * k)

    def x_face(i, j, k):  # normal +x
        return [pid(i, j, k), pid(i, j + 1, k), pid(i, j + 1, k + 1), pid(i, j, k + 1)]

    def y_face(i, j, k):  # normal +y
        return [pid(i, j, k), pid(i, j, k + 1), pid(i + 1, j, k + 1), pid(i + 1, j, k)]

    def z_face(i, j, k):  # normal +z
        return [pid(i, j, k), pid(i + 1, j, k), pid(i + 1, j + 1, k), pid(i, j + 1, k)]

    faces, owner, neighbour = [], [], []
    for k in range(nz):
        for j in range(NY):
            for i in range(NX):
                for face, other, ok in (
                    (x_face(i + 1, j, k), cid(i + 1, j, k), i + 1 < NX),
                    (y_face(i, j + 1, k), cid(i, j + 1, k), j + 1 < NY),
                    (z_face(i, j, k + 1), cid(i, j, k + 1), k + 1 < nz),
                ):
                    if ok:
                        faces.append(face)
                        owner.append(cid(i, j, k))
                        neighbour.append(other)
    patches = {
        "inlet": (
            "patch",
            [(x_face(0, j, k)[::-1], cid(0, j, k)) for k in range(nz) for j in range(NY)],
        ),
        "outlet": (
            "patch",
            [(x_face(NX, j, k), cid(NX - 1, j, k)) for k in range(nz) for j in range(NY)],
        ),
        "walls": (
            "wall",
            [(y_face(i, 0, k)[::-1], cid(i, 0, k)) for k in range(nz) for i in range(NX)]
            + [(y_face(i, NY, k), cid(i, NY - 1, k)) for k in range(nz) for i in range(NX)],
        ),
        "frontAndBack": (
            "empty",
            [(z_face(i, j, 0)[::-1], cid(i, j, 0)) for j in range(NY) for i in range(NX)]
            + [(z_face(i, j, nz), cid(i, j, nz - 1)) for j in range(NY) for i in range(NX)],
        ),
    }
    boundary = []
    for name, (kind, patch_faces) in patches.items():
        boundary.append(
            f"{name}\n{{\n    type {kind};\n    nFaces {len(patch_faces)};\n"
            f"    startFace {len(faces)};\n}}"
        )
        for face, cell in patch_faces:
            faces.append(face)
            owner.append(cell)

    xs, ys, zs = (
        np.linspace(0, LENGTH, NX + 1),
        np.linspace(0, HEIGHT, NY + 1),
        np.linspace(0, 0.1, nz + 1),
    )
    points = [
        f"({xs[i]:g} {ys[j]:g} {zs[k]:g})"
        for k in range(nz + 1)
        for j in range(NY + 1)
        for i in range(NX + 1)
    ]
    mesh = root / "constant" / "polyMesh"
    foam_file(mesh / "points", "vectorField", foam_list(points))
    foam_file(mesh / "faces", "faceList", foam_list([f"4({' '.join(map(str, f))})" for f in faces]))
    foam_file(mesh / "owner", "labelList", foam_list([str(c) for c in owner]))
    foam_file(mesh / "neighbour", "labelList", foam_list([str(c) for c in neighbour]))
    foam_file(mesh / "boundary", "polyBoundaryMesh", foam_list(boundary))
    foam_file(
        root / "system" / "controlDict",
        "dictionary",
        "application icoFoam;\nstartTime 0;\nendTime 0.5;\ndeltaT 0.005;\nwriteControl timeStep;\n"
        "writeInterval 100;\n",
    )

    cx, cy = np.tile(cell_centres()[0], nz), np.tile(cell_centres()[1], nz)
    for t in times:
        u = [f"({1 + t * y:g} {t * x:g} 0)" for x, y in zip(cx, cy, strict=True)]
        p = [f"{t - x:g}" for x in cx]
        foam_file(
            root / f"{t:g}" / "U",
            "volVectorField",
            "dimensions [0 1 -1 0 0 0 0];\ninternalField nonuniform List<vector>\n"
            + foam_list(u)
            + ";\nboundaryField\n{\n"
            "    inlet { type fixedValue; value uniform (1 0 0); }\n"
            "    outlet { type zeroGradient; }\n"
            "    walls { type fixedValue; value uniform (0 0 0); }\n"
            "    frontAndBack { type empty; }\n}\n",
        )
        foam_file(
            root / f"{t:g}" / "p",
            "volScalarField",
            "dimensions [0 2 -2 0 0 0 0];\ninternalField nonuniform List<scalar>\n"
            + foam_list(p)
            + ";\nboundaryField\n{\n"
            "    inlet { type zeroGradient; }\n"
            "    outlet { type fixedValue; value uniform 0; }\n"
            "    walls { type zeroGradient; }\n"
            "    frontAndBack { type empty; }\n}\n",
        )
    return root


def at(traj: Trajectory, x: float, y: float) -> int:
    return int(np.argmin(np.hypot(traj.mesh_pos[:, 0] - x, traj.mesh_pos[:, 1] - y)))


def test_two_dimensional_case_imports(tmp_path: Path) -> None:
    traj = read_openfoam_case(write_case(tmp_path / "case"))
    np.testing.assert_allclose(traj.time, [0.0, 0.5])
    assert traj.num_nodes == (NX + 1) * (NY + 1)
    assert traj.cells.shape == (2 * NX * NY, 3)
    centre = at(traj, 1.0, 1.0)
    # interior vertex: mean of its four cells' linear field = the field there
    np.testing.assert_allclose(traj.velocity[1, centre], [1.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(traj.pressure[1, centre], -0.5, atol=1e-6)
    np.testing.assert_allclose(traj.velocity[1, at(traj, 0.0, 1.0)], [1.0, 0.0])  # inlet value
    np.testing.assert_allclose(traj.velocity[1, at(traj, 1.0, 0.0)], [0.0, 0.0])  # wall value
    assert traj.node_type[at(traj, 0.0, 1.0)] == NodeType.INFLOW
    assert traj.node_type[at(traj, 3.0, 1.0)] == NodeType.OUTFLOW
    assert traj.node_type[at(traj, 0.0, 0.0)] == NodeType.WALL_BOUNDARY
    assert traj.node_type[centre] == NodeType.NORMAL

    back = Trajectory.load(traj.save(tmp_path / "case.h5"))
    np.testing.assert_array_equal(back.velocity, traj.velocity)
    assert back.attrs["source"] == "openfoam"


def test_three_dimensional_case_is_refused(tmp_path: Path) -> None:
    case = write_case(tmp_path / "thick", times=(0.0,), nz=2)
    with pytest.raises(DataFormatError, match=r"thick \(time 0\): a 3D case .* 6 of its 12 cells"):
        read_openfoam_case(case)


def test_missing_field_and_missing_mesh(tmp_path: Path) -> None:
    case = write_case(tmp_path / "case")
    (case / "0.5" / "U").unlink()
    with pytest.raises(DataFormatError, match=r"case \(time 0.5\): no velocity array .*found: p"):
        read_openfoam_case(case)
    shutil.rmtree(case / "constant")
    with pytest.raises(DataFormatError, match=r"not an OpenFOAM case .*constant/polyMesh/points"):
        read_openfoam_case(case)


def test_import_command_detects_the_case(tmp_path: Path) -> None:
    case = write_case(tmp_path / "cavity")
    assert main(["import", str(case), "-o", str(tmp_path / "out.h5")]) == 0
    traj = Trajectory.load(tmp_path / "out.h5")
    np.testing.assert_allclose(traj.time, [0.0, 0.5])
