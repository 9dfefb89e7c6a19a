"""The Fine-tune tab as a new user meets it, in a real napari window: a project of 10 DermQuest
photos whose expert masks are already in ``masks/`` (they count as accepted), *Fine-tune*
pressed with no setting touched; then the version it made is scored on the other 127 photos.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/widget_finetune.py \
        [--seed 0] [--screenshot docs/finetune-done.png]

Prints the tab's words before and after, the time the run took, and Dice on the other photos
before and after (the session the widget made, ``ModelSession.predict``). The draw is the one
``benchmarks/adaptation.py dermquest --draws SEED`` uses.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=10)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_nevseg.core.adapt import dice_per_image
    from napari_nevseg.core.data import find_pairs, load_pair
    from napari_nevseg.core.session import ModelSession
    from napari_nevseg.widgets.main_widget import NevsegWidget

    folder = args.data / "clinical_dermquest"
    pairs = find_pairs(folder / "images", folder / "masks")
    samples = [(p.stem, *load_pair(p)) for p in pairs]
    random.Random(args.seed).shuffle(samples)  # the draw of benchmarks/adaptation.py
    chosen = {s for s, _, _ in samples[: args.n_train]}
    evaluation = samples[args.n_train :]
    root = Path(tempfile.mkdtemp(prefix="nevseg-ft-")) / "new camera"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for p in pairs:
        if p.stem in chosen:
            shutil.copy(p.image, root / "images" / p.image.name)
            shutil.copy(p.mask, root / "masks" / f"{p.stem}.png")

    viewer = napari.Viewer(title="napari-nevseg")
    viewer.window.resize(1600, 1000)
    widget = NevsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="NevSeg", area="right")
    app = QApplication.instance()

    def wait(cond, timeout=600.0):
        t0 = time.perf_counter()
        while not cond() and time.perf_counter() - t0 < timeout:
            app.processEvents()
            time.sleep(0.02)

    wait(lambda: widget.controller.session is not None)
    widget.open_project(root)
    wait(lambda: not widget.controller.is_busy())
    widget.show_panel(widget.finetune)
    panel = widget.finetune
    print("before:", panel.data_label.text().replace("<b>", "").replace("</b>", ""))
    print(panel.plan_label.text())
    start = widget.controller.session
    started = time.perf_counter()
    panel.start()
    wait(lambda: not widget.controller.is_busy("train"))
    seconds = time.perf_counter() - started
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    print(f"after {seconds:.0f} s:", panel.result_label.text())
    if args.screenshot:
        viewer.screenshot(str(args.screenshot), canvas_only=False)
    tuned: ModelSession = widget.controller.session
    before = dice_per_image(start, evaluation)
    after = dice_per_image(tuned, evaluation)
    print(f"version {tuned.version}; Dice on the other {len(evaluation)}: {before.mean():.3f} -> {after.mean():.3f} "
          f"(paired mean difference {np.mean(after - before):+.3f})")
    widget.teardown()
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
