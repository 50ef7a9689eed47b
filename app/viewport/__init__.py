"""The 3D viewport: the tunnel mesh coloured by a field, with outlines, overlays and probes."""

from app.viewport.viewport import Viewport

__all__ = ["Viewport"]
