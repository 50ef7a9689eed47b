"""The Export dialog: what to write (frame or run; VTU/PVD, XDMF, CSV, PNG, MP4, GIF), where."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.export import ExportOptions


class ExportDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.whole_run = QRadioButton("Whole run (kept frames)")
        self.whole_run.setChecked(True)
        self.current = QRadioButton("Current frame only")
        self.vtk = QCheckBox("VTU + PVD (ParaView)")
        self.vtk.setChecked(True)
        self.xdmf = QCheckBox("XDMF + HDF5 (ParaView)")
        self.csv = QCheckBox("CSV of forces and probes")
        self.csv.setChecked(True)
        self.png = QCheckBox("PNG of the viewport")
        self.png.setChecked(True)
        self.mp4 = QCheckBox("MP4 movie")
        self.gif = QCheckBox("GIF movie")
        self.folder = QLineEdit(str(folder or Path.cwd() / "slipstream-export"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (
            self.whole_run,
            self.current,
            self.vtk,
            self.xdmf,
            self.csv,
            self.png,
            self.mp4,
            self.gif,
        ):
            layout.addWidget(w)
        layout.addLayout(row)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def options(self) -> ExportOptions:
        movies = tuple(s for s, box in (("mp4", self.mp4), ("gif", self.gif)) if box.isChecked())
        return ExportOptions(
            folder=Path(self.folder.text()).expanduser(),
            current_frame_only=self.current.isChecked(),
            vtk=self.vtk.isChecked(),
            xdmf=self.xdmf.isChecked(),
            csv=self.csv.isChecked(),
            png=self.png.isChecked(),
            movies=movies,
        )
