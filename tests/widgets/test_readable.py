"""What the dock shows reads as sentences and plain numbers: the Models tab's summary, the
measurement rows the core formats."""

from __future__ import annotations


def test_models_tab_summarises_the_version_and_measure_rows_match_the_core(widget):
    from napari_nevseg.core.checkpoint import read_metadata
    from napari_nevseg.core.measure import DISPLAY_ROWS
    from napari_nevseg.core.session import default_model_path
    from napari_nevseg.widgets.measure_panel import ROW_NAMES

    text = widget.models.info.text()
    assert text.startswith("<b>default: the model shipped with napari-nevseg</b>")
    ph2_test = read_metadata(default_model_path())["metrics"]["by_source"]["PH2 test"]["dice"]
    assert f"PH2 test (32 images, never trained on): Dice {ph2_test:.3f}" in text and "million parameters" in text
    for mark in ("{", "[", '"arch', "json"):
        assert mark not in text, text
    assert ROW_NAMES == tuple(name for name, *_ in DISPLAY_ROWS)
