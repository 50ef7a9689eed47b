"""Geometry: obstacle outlines, shape-file loaders, validation and gmsh tunnel meshing."""

from engine.geometry.airfoil_file import load_airfoil_dat
from engine.geometry.mesh import TunnelMesh
from engine.geometry.meshfile import load_mesh_file, write_mesh
from engine.geometry.quality import MeshQuality, mesh_quality
from engine.geometry.shapes import outline
from engine.geometry.surface_section import section_from_surface
from engine.geometry.tunnel import build_tunnel_mesh
from engine.geometry.validate import validate_obstacles

__all__ = [
    "MeshQuality",
    "TunnelMesh",
    "build_tunnel_mesh",
    "load_airfoil_dat",
    "load_mesh_file",
    "mesh_quality",
    "outline",
    "section_from_surface",
    "validate_obstacles",
    "write_mesh",
]
