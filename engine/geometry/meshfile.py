"""Existing 2D meshes (.msh, .vtu) in and out, with node types and named boundaries.

Loading takes boundary information from the richest source the file offers: our own
``boundary_id`` line cells, else gmsh physical-group names, else the geometry itself (the bounding
box's left side is the inflow, the right side the outflow, the rest of the outer loop walls, and
every inner loop an obstacle). A ``node_type`` point array, when present, is used as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import DataFormatError, GeometryError
from engine.geometry.mesh import TunnelMesh
from engine.geometry.tunnel import node_types_from_edges
from engine.nodetypes import NodeType

if TYPE_CHECKING:
    import meshio

MESH_SUFFIXES = (".msh", ".vtu")
FIXED_BOUNDARIES = ("inflow", "outflow", "walls")  # boundary_id 0, 1, 2; obstacle i is 3 + i
_OBSTACLE_INDEX = re.compile(r"^obstacle-(\d+)$")
_NAME_HINTS = {
    "inflow": ("inflow", "inlet"),
    "outflow": ("outflow", "outlet"),
    "walls": ("wall", "top", "bottom", "side"),
    "obstacle": ("obstacle", "cylinder", "airfoil", "body", "wing", "hole"),
}


def boundary_names(mesh: TunnelMesh) -> list[str]:
    """Boundary names in ``boundary_id`` order."""
    return [*FIXED_BOUNDARIES, *[f"obstacle-{i}" for i in range(mesh.num_obstacles)]]


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def write_mesh(mesh: TunnelMesh, path: str | Path) -> None:
    """Write ``mesh`` as .vtu (ParaView) or .msh (gmsh 2.2), reloadable by :func:`load_mesh_file`.

    Triangles carry the flow; boundary edges are added as line cells so the boundaries survive:
    in .vtu as a ``boundary_id`` cell array (-1 on triangles), in .msh as named physical groups.
    """
    import meshio

    path = Path(path)
    names = [n for n in boundary_names(mesh) if n in mesh.boundary_edges]
    lines = np.concatenate([mesh.boundary_edges[n] for n in names])
    ids = np.concatenate(
        [np.full(len(mesh.boundary_edges[n]), boundary_names(mesh).index(n)) for n in names]
    )
    points = np.column_stack([mesh.points, np.zeros(mesh.num_nodes)])
    cells = [("triangle", mesh.cells), ("line", lines)]
    suffix = path.suffix.lower()
    if suffix == ".vtu":
        out = meshio.Mesh(
            points,
            cells,
            point_data={"node_type": mesh.node_type.astype(np.int32)},
            cell_data={
                "boundary_id": [np.full(len(mesh.cells), -1, np.int32), ids.astype(np.int32)]
            },
        )
        meshio.write(path, out, binary=True)
    elif suffix == ".msh":
        fluid_tag = len(boundary_names(mesh)) + 1
        tags = [np.full(len(mesh.cells), fluid_tag), ids + 1]
        field_data = {n: np.array([boundary_names(mesh).index(n) + 1, 1]) for n in names}
        field_data["fluid"] = np.array([fluid_tag, 2])
        out = meshio.Mesh(
            points,
            cells,
            cell_data={"gmsh:physical": tags, "gmsh:geometrical": tags},
            field_data=field_data,
        )
        meshio.write(path, out, file_format="gmsh22", binary=False)
    else:
        raise DataFormatError(
            f"{path}: cannot write {suffix or 'files without a suffix'}; use .vtu or .msh"
        )


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def load_mesh_file(path: str | Path) -> TunnelMesh:
    """Read a 2D linear-triangle mesh and work out its node types and boundaries."""
    import meshio

    path = Path(path)
    if not path.is_file():
        raise GeometryError(f"{path}: no such mesh file")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise DataFormatError(f"{path}: expected a {' or '.join(MESH_SUFFIXES)} mesh")
    # The format's own reader: meshio.read() prints and calls sys.exit on a malformed file.
    reader = meshio.vtu.read if path.suffix.lower() == ".vtu" else meshio.gmsh.read
    try:
        raw = reader(str(path))
    except Exception as exc:  # meshio raises assorted errors on malformed files
        raise DataFormatError(
            f"{path}: cannot read the mesh ({type(exc).__name__}: {exc})"
        ) from None

    points = np.asarray(raw.points, dtype=float)
    if points.ndim != 2 or len(points) == 0:
        raise DataFormatError(f"{path}: the mesh has no points")
    extent = float(np.ptp(points[:, :2], axis=0).max())
    if points.shape[1] == 3 and np.ptp(points[:, 2]) > 1e-9 * max(extent, 1e-300):
        raise DataFormatError(f"{path}: not a 2D mesh (z varies); export a planar section")

    triangles, lines, line_labels = _cells(raw, path)
    used = np.unique(triangles)
    remap = np.full(len(points), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    points2 = points[used, :2]
    cells = _counter_clockwise(points2, remap[triangles])

    node_type_raw = raw.point_data.get("node_type")
    edges = None if line_labels is None else _labelled_edges(lines, line_labels, remap, points2)
    if edges is None or not {"inflow", "outflow", "walls"} <= set(edges):
        edges = _edges_from_geometry(points2, cells)
    if node_type_raw is not None:
        node_type = np.asarray(node_type_raw).reshape(len(points), -1)[:, 0][used].astype(np.int64)
        valid = {int(k) for k in NodeType}
        if not set(np.unique(node_type).tolist()) <= valid:
            raise DataFormatError(f"{path}: node_type holds values outside {sorted(valid)}")
    else:
        node_type = node_types_from_edges(len(points2), edges)
    return TunnelMesh(points=points2, cells=cells, node_type=node_type, boundary_edges=edges)


def _cells(raw: meshio.Mesh, path: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Triangles, boundary lines and each line's boundary name (None when the file has none)."""
    tri_blocks, line_blocks, label_blocks = [], [], []
    id_to_name = {int(v[0]): k for k, v in raw.field_data.items() if len(v) >= 2 and int(v[1]) == 1}
    for k, block in enumerate(raw.cells):
        if block.type == "triangle":
            tri_blocks.append(block.data)
        elif block.type == "line":
            line_blocks.append(block.data)
            if "boundary_id" in raw.cell_data:
                label_blocks.append([_id_name(int(i)) for i in raw.cell_data["boundary_id"][k]])
            elif id_to_name and "gmsh:physical" in raw.cell_data:
                tags = raw.cell_data["gmsh:physical"][k]
                label_blocks.append([id_to_name.get(int(t), "") for t in tags])
        elif block.type not in ("vertex",):
            raise DataFormatError(
                f"{path}: unsupported cell type {block.type!r}; only linear triangles are used"
            )
    if not tri_blocks:
        raise DataFormatError(
            f"{path}: the mesh has no triangles "
            "(with gmsh, add a physical surface or save all elements)"
        )
    triangles = np.concatenate(tri_blocks).astype(np.int64)
    if triangles.min() < 0 or triangles.max() >= len(raw.points):
        raise DataFormatError(f"{path}: triangles refer to points that do not exist")
    lines = (
        np.concatenate(line_blocks).astype(np.int64) if line_blocks else np.zeros((0, 2), np.int64)
    )
    labelled = line_blocks and len(label_blocks) == len(line_blocks)
    labels = [name for block in label_blocks for name in block] if labelled else None
    return triangles, lines, labels


def _id_name(boundary_id: int) -> str:
    if 0 <= boundary_id < len(FIXED_BOUNDARIES):
        return FIXED_BOUNDARIES[boundary_id]
    return f"obstacle-{boundary_id - len(FIXED_BOUNDARIES)}" if boundary_id >= 0 else ""


def _classify(name: str) -> str | None:
    lowered = name.lower()
    if _OBSTACLE_INDEX.match(lowered):
        return lowered
    for kind, hints in _NAME_HINTS.items():
        if any(h in lowered for h in hints):
            return kind
    return None


def _labelled_edges(
    lines: np.ndarray, labels: list[str], remap: np.ndarray, points: np.ndarray
) -> dict[str, np.ndarray] | None:
    """Boundary edges grouped by name; unnamed obstacle groups split into loops, ordered by x."""
    groups: dict[str, list[np.ndarray]] = {}
    for edge, label in zip(remap[lines], labels, strict=True):
        kind = _classify(label)
        if kind is None or (edge < 0).any():
            continue
        groups.setdefault(kind, []).append(edge)
    if not groups:
        return None
    edges = {k: np.array(v, dtype=np.int64) for k, v in groups.items()}
    loose = edges.pop("obstacle", None)
    n_named = sum(1 for k in edges if k.startswith("obstacle-"))
    if loose is not None:
        for i, loop in enumerate(_loops_by_position(loose, points)):
            edges[f"obstacle-{n_named + i}"] = loop
    return edges


def _counter_clockwise(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    a, b, c = points[cells[:, 0]], points[cells[:, 1]], points[cells[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    cells = cells.copy()
    cells[area2 < 0] = cells[area2 < 0][:, [0, 2, 1]]
    return cells


def free_edges(cells: np.ndarray) -> np.ndarray:
    """Edges [E, 2] used by exactly one triangle: the domain's boundary."""
    e = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]])
    e.sort(axis=1)
    unique, counts = np.unique(e, axis=0, return_counts=True)
    return unique[counts == 1]


def edge_components(edges: np.ndarray) -> list[np.ndarray]:
    """Split edges into connected groups (closed boundary loops for a valid mesh)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(edges) == 0:
        return []
    n = int(edges.max()) + 1
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    edge_label = label[edges[:, 0]]
    return [edges[edge_label == lab] for lab in np.unique(edge_label)]


def _loops_by_position(edges: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
    """Boundary loops ordered by centroid (x, then y): a stable obstacle numbering."""
    loops = edge_components(edges)
    return sorted(loops, key=lambda loop: tuple(points[np.unique(loop)].mean(axis=0)))


def _edges_from_geometry(points: np.ndarray, cells: np.ndarray) -> dict[str, np.ndarray]:
    """Boundaries from the shape alone: outer loop by bounding-box side, inner loops obstacles."""
    loops = edge_components(free_edges(cells))
    leftmost = int(np.argmin(points[:, 0]))
    outer = next(loop for loop in loops if (loop == leftmost).any())
    inner = _loops_by_position(
        np.concatenate([loop for loop in loops if loop is not outer] or [np.zeros((0, 2), int)]),
        points,
    )
    lo, hi = points.min(axis=0), points.max(axis=0)
    tol = 1e-6 * float((hi - lo).max())
    x = points[outer][..., 0]  # [E, 2]
    on_left = (np.abs(x - lo[0]) <= tol).all(axis=1)
    on_right = (np.abs(x - hi[0]) <= tol).all(axis=1)
    edges = {
        "inflow": outer[on_left],
        "outflow": outer[on_right],
        "walls": outer[~on_left & ~on_right],
    }
    for i, loop in enumerate(inner):
        edges[f"obstacle-{i}"] = loop
    return edges
