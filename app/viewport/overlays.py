"""Velocity overlays as VTK pipelines fed by the viewport's mesh.

Each overlay reads the ``velocity`` point array that the viewport updates in place each frame;
VTK re-executes the filter on the next render, so nothing is rebuilt per frame.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv
from vtkmodules.vtkFiltersCore import vtkGlyph3D
from vtkmodules.vtkFiltersFlowPaths import vtkStreamTracer
from vtkmodules.vtkFiltersSources import vtkArrowSource, vtkLineSource
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

GLYPH_COUNT = 600
STREAMLINE_SEEDS = 24


def streamlines_actor(grid: pv.PolyData, length: float, height: float) -> vtkActor:
    """Streamlines seeded along a line just downstream of the inlet, traced forward."""
    seeds = vtkLineSource()
    seeds.SetPoint1(0.01 * length, 0.02 * height, 0.0)
    seeds.SetPoint2(0.01 * length, 0.98 * height, 0.0)
    seeds.SetResolution(STREAMLINE_SEEDS - 1)
    tracer = vtkStreamTracer()
    tracer.SetInputData(grid)
    tracer.SetSourceConnection(seeds.GetOutputPort())
    tracer.SetInputArrayToProcess(0, 0, 0, 0, "velocity")
    tracer.SetIntegrationDirectionToForward()
    tracer.SetMaximumPropagation(4.0 * length)
    tracer.SetIntegratorTypeToRungeKutta2()
    tracer.SetInitialIntegrationStep(0.5)
    tracer.SetComputeVorticity(False)
    return _actor(tracer, color=(1.0, 1.0, 1.0))


def glyphs_actor(
    grid: pv.PolyData, arrow_per_speed: float
) -> tuple[vtkActor, pv.PolyData, np.ndarray]:
    """Arrows on an evenly spread subset of the vertices; returns the actor, the sample polydata
    (whose ``velocity`` the viewport refreshes) and the chosen vertex indices."""
    rng = np.random.default_rng(0)  # fixed: the same arrows every time the overlay is shown
    count = min(GLYPH_COUNT, grid.n_points)
    index = np.sort(rng.choice(grid.n_points, size=count, replace=False))
    sample = pv.PolyData(np.asarray(grid.points)[index])
    sample.point_data["velocity"] = np.zeros((count, 3), dtype=np.float32)
    sample.point_data.active_vectors_name = "velocity"
    arrow = vtkArrowSource()
    glyph = vtkGlyph3D()
    glyph.SetInputData(sample)
    glyph.SetSourceConnection(arrow.GetOutputPort())
    glyph.SetVectorModeToUseVector()
    glyph.SetScaleModeToScaleByVector()
    glyph.OrientOn()
    glyph.SetScaleFactor(arrow_per_speed)
    return _actor(glyph, color=(1.0, 1.0, 1.0)), sample, index


def _actor(algorithm, color: tuple[float, float, float]) -> vtkActor:
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(algorithm.GetOutputPort())
    mapper.ScalarVisibilityOff()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*color)
    actor.SetPosition(0.0, 0.0, 0.002)  # above the coloured surface so it is never z-fought
    return actor
