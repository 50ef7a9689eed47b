"""Slipstream's desktop app: a PySide6 window over the Qt-free ``engine`` package."""
