"""Docked control panels; each edits one section of :class:`app.state.AppState`."""
