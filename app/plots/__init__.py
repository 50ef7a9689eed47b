"""Live pyqtgraph plots of force coefficients and probe series."""

from app.plots.plots import PlotsPanel

__all__ = ["PlotsPanel"]
