"""The fine-tune worker body: load the samples, then run the core's training generator."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np


def _samples(items: Sequence[tuple]) -> Generator[tuple[str, np.ndarray, np.ndarray], None, None]:
    from napari_nevseg.core.image_io import read_image, read_mask

    for kind, name, image, mask in items:
        if kind == "file":
            rgb = read_image(image)
            yield name, rgb, read_mask(mask, rgb.shape[:2])
        else:
            yield name, image, mask


def finetune_job(
    init: tuple[Any, dict], train_items: Sequence[tuple], val_items: Sequence[tuple], plan, niceness: int = 10
):
    """Generator for a napari worker: yields TrainProgress, returns the TrainResult of
    ``core.adapt.finetune`` run as ``plan`` (a ``FinetunePlan``) says.

    Runs entirely off the GUI thread; the GUI's model is never touched (``init`` is a copy).
    The worker thread runs at a lower CPU priority (``niceness``) so painting and panning win
    the cores while it trains (measured by benchmarks/measure_gui_stalls.py).
    """
    from napari_nevseg.core.adapt import finetune
    from napari_nevseg.core.priority import background_priority

    with background_priority(niceness):
        result = yield from finetune(init, _samples(train_items), _samples(val_items), plan)
    return result
