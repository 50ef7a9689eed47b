"""Flows out of Slipstream (VTU/PVD, XDMF) and other solvers' results in (docs/data-format.md)."""
