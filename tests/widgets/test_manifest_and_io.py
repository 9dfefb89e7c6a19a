"""Manifest, sample data, reader: the plugin as napari discovers it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.widgets.conftest import LONG


def test_npe2_validate_passes():
    npe2 = Path(sys.executable).parent / "npe2"
    result = subprocess.run([str(npe2), "validate", "napari-nevseg"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in (result.stdout + result.stderr).lower()


def test_manifest_lists_the_widget_reader_and_samples():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-nevseg")
    assert manifest.display_name == "NevSeg"
    assert [w.display_name for w in manifest.contributions.widgets] == ["Lesion review and fine-tuning"]
    assert {s.key for s in manifest.contributions.sample_data} == {"IMD003", "IMD008", "IMD085", "IMD405"}
    assert "*.png" in manifest.contributions.readers[0].filename_patterns


def test_widget_opens_from_the_plugins_menu_and_loads_the_model(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-nevseg", "Lesion review and fine-tuning")
    assert "loading" in widget.status_label.text()
    qtbot.waitUntil(lambda: widget.controller.session is not None, timeout=LONG)
    qtbot.waitUntil(lambda: "default" in widget.status_label.text(), timeout=LONG)
    qtbot.waitUntil(lambda: not widget.controller.workers, timeout=LONG)
    widget.teardown()


def test_sample_opens_with_reference_mask(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-nevseg", "IMD085")
    image, reference = viewer.layers["IMD085"], viewer.layers["IMD085 reference"]
    assert image.rgb and image.data.shape[2] == 3
    assert reference.data.shape == image.data.shape[:2]
    assert set(np.unique(reference.data)) == {0, 1}


def test_reader_applies_exif_orientation(make_napari_viewer, tmp_path):
    src = Image.open(Path(__file__).resolve().parents[2] / "sample_data" / "images" / "IMD003.png").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    path = tmp_path / "rotated photo ü.jpg"
    src.save(path, exif=exif.tobytes(), quality=95)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-nevseg")
    layer = viewer.layers[-1]
    assert layer.data.shape[:2] == (src.width, src.height)


def test_reader_reports_a_broken_file_without_a_traceback(make_napari_viewer, tmp_path, notifications):
    bad = tmp_path / "broken.png"
    bad.write_text("this is not an image")
    viewer = make_napari_viewer()
    viewer.open(str(bad), plugin="napari-nevseg")
    assert len(viewer.layers) == 0
    assert any("not an image" in message for message in notifications)
