"""Models panel: the versions of the project's model, switch and roll back, import, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from napari_nevseg.widgets.controller import ReviewController


class ModelsPanel(QWidget):
    """A drop-down of versions (default, v1, v2, ...) with their metadata."""

    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.combo = QComboBox()
        self.use_btn = QPushButton("Use this version")
        self.import_btn = QPushButton("Import model file…")
        self.export_btn = QPushButton("Export this version…")
        self.info = QLabel("the shipped default model; open a project folder to keep fine-tuned versions")
        self.info.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("model version"))
        layout.addWidget(self.combo)
        layout.addWidget(self.use_btn)
        row = QHBoxLayout()
        row.addWidget(self.import_btn)
        row.addWidget(self.export_btn)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addStretch(1)
        self.combo.currentTextChanged.connect(self._show_info)
        self.use_btn.clicked.connect(lambda: self.use_version(self.combo.currentText()))
        self.import_btn.clicked.connect(self._choose_import)
        self.export_btn.clicked.connect(self._choose_export)
        controller.events.project_changed.connect(self.refresh)
        controller.events.session_changed.connect(self.refresh)
        controller.events.busy_changed.connect(lambda *_: self._update_enabled())
        self.refresh()

    def refresh(self, *_) -> None:
        registry = self.controller.registry
        versions = registry.versions() if registry is not None else ["default"]
        active = self.controller.session.version if self.controller.session is not None else "default"
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(versions)
        if active in versions:
            self.combo.setCurrentText(active)
        self.combo.blockSignals(False)
        self._show_info(self.combo.currentText())
        self._update_enabled()

    def _update_enabled(self) -> None:
        has_project = self.controller.registry is not None
        idle = not self.controller.is_busy("train") and not self.controller.is_busy("load")
        self.use_btn.setEnabled(idle)
        self.import_btn.setEnabled(has_project and idle)
        self.export_btn.setEnabled(True)

    def _show_info(self, version: str) -> None:
        from napari_nevseg.core.checkpoint import read_metadata
        from napari_nevseg.core.errors import NevsegError

        if not version:
            return
        registry = self.controller.registry
        try:
            if registry is not None:
                entry, path = registry.entry(version), registry.path(version)
            else:
                from napari_nevseg.core.session import default_model_path

                entry, path = {"version": "default"}, default_model_path()
            meta = read_metadata(path)
        except NevsegError as exc:
            self.info.setText(str(exc))
            return
        lines = [f"<b>{version}</b> · parent: {entry.get('parent') or meta.get('parent') or '–'} · "
                 f"created {meta.get('created', '?')}",
                 f"{meta.get('arch')} {json.dumps(meta.get('arch_params'))}, works at "
                 f"{meta['work_size'][1]}x{meta['work_size'][0]}"]
        training = meta.get("training", {})
        if training:
            lines.append(f"trained on {len(training.get('train_images', []))} images, validated on "
                         f"{len(training.get('val_images', []))}; {training.get('epochs_run', '?')} epochs, "
                         f"{training.get('seconds', '?')} s on {training.get('device', '?')}")
        metrics = meta.get("metrics", {})
        if metrics.get("val_dice") is not None:
            before = metrics.get("val_dice_before")
            lines.append(f"validation Dice {'' if before is None else f'{before:.3f} → '}{metrics['val_dice']:.3f}")
        if metrics.get("test_dice") is not None:
            lines.append(f"held-out test Dice {metrics['test_dice']:.3f}")
        self.info.setText("<br>".join(lines))

    def use_version(self, version: str) -> None:
        """Switch the active model (roll back by choosing an older version)."""
        from napari.utils.notifications import show_error

        from napari_nevseg.core.errors import NevsegError

        try:
            self.controller.request_version(version)
        except NevsegError as exc:
            show_error(str(exc))

    def _choose_import(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", "", "Model files (*.safetensors)")
        if path:
            self.import_file(path)

    def import_file(self, path: str | Path) -> str | None:
        """Check a model file (never unpickled) and add it as a new version."""
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.errors import NevsegError

        if self.controller.registry is None:
            show_error("open a project folder first: imported models are stored with its versions")
            return None
        try:
            version = self.controller.registry.import_file(path)
        except NevsegError as exc:
            show_error(str(exc))
            return None
        show_info(f"imported {Path(path).name} as {version}")
        self.use_version(version)
        return version

    def _choose_export(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        version = self.combo.currentText()
        path, _ = QFileDialog.getSaveFileName(self, "Export model", f"nevseg-{version}.safetensors", "Model files (*.safetensors)")
        if path:
            self.export(version, path)

    def export(self, version: str, path: str | Path) -> Path | None:
        from napari.utils.notifications import show_error, show_info

        from napari_nevseg.core.atomic import atomic_write_bytes
        from napari_nevseg.core.errors import NevsegError
        from napari_nevseg.core.session import default_model_path

        try:
            if self.controller.registry is not None:
                target = self.controller.registry.export(version, path)
            else:
                target = atomic_write_bytes(path, default_model_path().read_bytes())
        except NevsegError as exc:
            show_error(str(exc))
            return None
        show_info(f"model {version} exported to {target}")
        return target
