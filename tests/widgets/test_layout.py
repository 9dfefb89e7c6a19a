"""The dock fits a laptop (size facts, not timings): at most 420 px wide, every tab scrolls, the
window's minimum size fits 1366x768; the Advanced sections start folded and keep their values."""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import QAbstractSpinBox, QLabel, QScrollArea

DOCK_MAX = 420


def test_the_dock_is_at_most_420_px_wide_and_every_tab_scrolls(widget):
    assert widget.minimumSizeHint().width() <= DOCK_MAX
    assert widget.sizeHint().width() <= DOCK_MAX
    pages = {widget.tabs.tabText(i): widget.tabs.widget(i) for i in range(widget.tabs.count())}
    assert set(pages) == {"Review", "Measure", "Fine-tune", "Models"}
    for name, page in pages.items():
        assert isinstance(page, QScrollArea), name
    assert pages["Fine-tune"].widget() is widget.finetune
    widget.show_panel(widget.finetune)
    assert widget.tabs.tabText(widget.tabs.currentIndex()) == "Fine-tune"
    # the dock's minimum keeps every page whole: narrowing it cannot cut a control off
    for page in pages.values():
        assert page.minimumSizeHint().width() >= page.widget().minimumSizeHint().width()
    # no unwrapped label wider than the dock (one such label forced it to 602 px)
    for label in widget.findChildren(QLabel):
        if not label.wordWrap():
            assert label.sizeHint().width() <= DOCK_MAX - 40, label.text()


def test_the_window_can_be_as_small_as_a_laptop_screen(widget):
    window = widget.viewer.window._qt_window
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, (hint.width(), hint.height())


def test_advanced_sections_start_folded_and_keep_their_values(widget, qtbot):
    predict, finetune = widget.predict, widget.finetune
    assert not predict.advanced.isExpanded() and not finetune.advanced.isExpanded()
    # the magicgui form and the panel read the same widgets
    predict.settings.threshold.value = 0.7
    predict.settings.fill_holes.value = False
    assert predict.threshold.value() == pytest.approx(0.7)
    assert predict.cleanup().fill_holes is False and predict.cleanup().keep_largest is True
    finetune.settings.epochs.value = 7
    finetune.settings.learning_rate.value = 2e-4
    finetune.settings.threads.value = 1
    for section in (predict.advanced, finetune.advanced):
        section.expand(animate=False)
        section.collapse(animate=False)
    assert predict.threshold.value() == pytest.approx(0.7) and not predict.fill_holes.isChecked()
    assert finetune.epochs.value() == 7 and finetune.lr.value() == pytest.approx(2e-4) and finetune.threads.value() == 1
    # open, its spin boxes get their full height (they were squashed to 20 px in a fixed-height tab)
    finetune.advanced.expand(animate=False)
    widget.show_panel(finetune)
    widget.resize(DOCK_MAX, 700)
    widget.show()
    qtbot.waitUntil(lambda: finetune.epochs.height() > 0)
    for box in finetune.settings.native.findChildren(QAbstractSpinBox):
        assert box.height() >= box.minimumSizeHint().height()
