"""The tiny click model of the tests, and the recipe that made it.

``CLICK_MODEL_FILE`` (``tests/data/click_blob.safetensors``, about 240 kB) is a ResUNet
(channels 8, 16, 32, 32) at working size 48x64 taking RGB plus the three guidance channels,
trained by the product's own ``core.training.train`` with simulated clicks on 64 synthetic blob
pictures (``tests.synthetic.blob_picture``). Core and widget tests load it through the
``click_model_file`` / ``click_session`` fixtures of ``tests/conftest.py``.

Regenerate it (about a minute on one CPU thread) after a change to the model file format or to
the click encoding::

    PYTHONPATH=. python -m tests.click_model
"""

from __future__ import annotations

from pathlib import Path

CLICK_MODEL_FILE = Path(__file__).resolve().parent / "data" / "click_blob.safetensors"
WORK_HW = (48, 64)


def train_click_model():
    """The recipe: returns the ``TrainResult``."""
    import torch

    from napari_nevseg.core.training import ClickTraining, TrainConfig, make_training_set, train
    from tests.synthetic import blob_picture

    torch.set_num_threads(1)
    h, w = WORK_HW
    train_set = make_training_set(
        [(f"b{i}", *blob_picture(2 * h, 2 * w, 2000 + i, grey=i % 5 == 0)) for i in range(64)], WORK_HW
    )
    val_set = make_training_set([(f"v{i}", *blob_picture(2 * h, 2 * w, 3000 + i)) for i in range(8)], WORK_HW)
    config = TrainConfig(
        arch="resunet", arch_params={"channels": [8, 16, 32, 32], "norm": "instance", "top": "direct"},
        work_size=WORK_HW, epochs=30, batch_size=8, lr=5e-3, warmup_fraction=0.0, device="cpu", seed=0,
        clicks=ClickTraining(radius=2.5),
    )
    gen = train(train_set, val_set, config)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def main() -> None:
    from napari_nevseg.core.checkpoint import save_model

    result = train_click_model()
    save_model(CLICK_MODEL_FILE, result.model, {**result.metadata, "version": "click-blob"})
    print(f"wrote {CLICK_MODEL_FILE}: validation Dice {result.val_dice_best:.4f}, {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
