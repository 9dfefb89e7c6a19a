"""Does the dock fit a laptop? Opens napari at a screen size with the NevSeg dock, a project of
the sample images and the model loaded, prints the window, dock and canvas sizes, the minimum
sizes that decide them, and every control squashed below its size hint, then saves screenshots.

    python tools/layout_check.py            # both sizes, each under its own Xvfb screen
    xvfb-run -a -s "-screen 0 1366x768x24" python tools/layout_check.py --screen 1366x768

Targets (issue 12, item 14): at 1366x768 the whole window fits the screen with the dock at most
420 px wide and no control squashed; at 1920x1080 the canvas has at least 60% of the width.
Screenshots: docs/layout-WxH.png (the Review tab, as it opens) and, with --tab-shots DIR, one
per tab with its Advanced section open (DIR/layout-WxH-<tab>.png), to look at each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = ("1366x768", "1920x1080")
DOCK_MAX = 420
CANVAS_SHARE_MIN = 0.60


def _pump(app, seconds: float = 0.6) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def _wait(app, cond, timeout: float = 300.0) -> None:
    end = time.perf_counter() + timeout
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def _folded(widget, root) -> bool:
    """Inside a folded section (a collapsed QCollapsible has zero height)."""
    while widget is not None and widget is not root:
        if widget.height() == 0:
            return True
        widget = widget.parentWidget()
    return False


def _unfold(page, app) -> int:
    """Open every collapsible section of ``page``, as a user looking for a setting would."""
    from superqt import QCollapsible

    sections = page.findChildren(QCollapsible)
    for section in sections:
        section.expand(animate=False)
    _pump(app, 0.3)
    return len(sections)


def squashed_controls(root) -> list[str]:
    """Visible controls smaller than Qt's minimum size hint (cut text, 20 px spin boxes)."""
    from qtpy.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QLineEdit

    found = []
    for widget in root.findChildren((QAbstractSpinBox, QComboBox, QAbstractButton, QLineEdit, QLabel)):
        if not widget.isVisibleTo(root) or _folded(widget, root):
            continue
        hint = widget.minimumSizeHint()
        if isinstance(widget, QLabel):
            if widget.wordWrap() or not widget.text():
                continue
            hint = widget.sizeHint()  # an unwrapped label is cut below its full text
        if widget.width() < hint.width() or widget.height() < hint.height():
            name = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
            found.append(f"{type(widget).__name__}({str(name)[:30]!r}) {widget.width()}x{widget.height()} "
                         f"< hint {hint.width()}x{hint.height()}")
    return found


def check(screen: str, tab_shots: Path | None) -> bool:
    import napari
    from qtpy.QtWidgets import QApplication, QScrollArea

    from napari_nevseg.widgets.main_widget import NevsegWidget

    width, height = (int(v) for v in screen.split("x"))
    root = Path(tempfile.mkdtemp(prefix="nevseg-layout-")) / "clinic"
    shutil.copytree(REPO / "sample_data" / "images", root / "images")
    viewer = napari.Viewer(title="napari-nevseg")
    window = viewer.window._qt_window
    widget = NevsegWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="NevSeg", area="right")
    app = QApplication.instance()
    window.setGeometry(app.primaryScreen().availableGeometry())
    _wait(app, lambda: widget.controller.session is not None)
    widget.open_project(root)
    _wait(app, lambda: not widget.controller.is_busy())
    widget.measure.pixel_size.setValue(0.0105)
    viewer.reset_view()
    _pump(app)

    canvas = viewer.window._qt_viewer.canvas.native
    screen_geo = app.primaryScreen().availableGeometry()
    fits = window.frameGeometry().width() <= screen_geo.width() and window.frameGeometry().height() <= screen_geo.height()
    print(f"== screen {width}x{height} (available {screen_geo.width()}x{screen_geo.height()})")
    print(f"window {window.width()}x{window.height()} (minimum hint {window.minimumSizeHint().width()}x"
          f"{window.minimumSizeHint().height()}): {'fits' if fits else 'DOES NOT FIT'}")
    print(f"dock {dock.width()}x{dock.height()}, NevSeg minimum hint {widget.minimumSizeHint().width()}x"
          f"{widget.minimumSizeHint().height()}, minimum width {widget.minimumWidth()}")
    share = canvas.width() / max(1, window.width())
    print(f"canvas {canvas.width()}x{canvas.height()} = {100 * share:.0f}% of the window's width")
    ok = fits and dock.width() <= DOCK_MAX and widget.minimumSizeHint().width() <= DOCK_MAX
    if width >= 1920:
        ok = ok and share >= CANVAS_SHARE_MIN
    for index in range(widget.tabs.count()):
        widget.tabs.setCurrentIndex(index)
        _pump(app, 0.3)
        name = widget.tabs.tabText(index)
        page = widget.tabs.widget(index)
        squashed = squashed_controls(page)
        inner = page.widget() if hasattr(page, "widget") else page
        print(f"tab {name}: page {page.width()}x{page.height()}, content {inner.width()}x{inner.height()} "
              f"(minimum hint {inner.minimumSizeHint().width()}x{inner.minimumSizeHint().height()}), "
              f"scrolls: {isinstance(page, QScrollArea)}, squashed controls: {len(squashed)}")
        sections = _unfold(page, app)
        if sections:
            unfolded = squashed_controls(page)
            print(f"    with its {sections} Advanced section(s) open: content {inner.width()}x{inner.height()}, "
                  f"squashed controls: {len(unfolded)}")
            squashed += unfolded
        for line in squashed:
            print(f"    {line}")
        ok = ok and not squashed
        if tab_shots is not None:
            tab_shots.mkdir(parents=True, exist_ok=True)
            viewer.screenshot(str(tab_shots / f"layout-{screen}-{name.lower().replace(' ', '-')}.png"),
                              canvas_only=False)
    from superqt import QCollapsible

    for section in widget.findChildren(QCollapsible):
        section.collapse(animate=False)  # the main screenshot shows the panels as they open
    widget.tabs.setCurrentIndex(0)
    _pump(app, 0.3)
    out = REPO / "docs" / f"layout-{screen}.png"
    viewer.screenshot(str(out), canvas_only=False)
    print(f"screenshot {out.relative_to(REPO)}")
    print(f"targets: {'met' if ok else 'NOT met'}")
    widget.teardown()
    viewer.close()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screen", help="WxH; without it, each size runs under its own xvfb-run")
    parser.add_argument("--tab-shots", type=Path, help="also a screenshot of every tab, into this folder")
    args = parser.parse_args()
    if args.screen:
        return 0 if check(args.screen, args.tab_shots) else 1
    status = 0
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(REPO)}
    for size in SIZES:
        command = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, __file__, "--screen", size]
        extra = ["--tab-shots", str(args.tab_shots.resolve())] if args.tab_shots else []
        status |= subprocess.run(command + extra, env=env).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
