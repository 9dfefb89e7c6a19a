"""Human in the loop on a small scale: fine-tuning on a few corrected masks of a new look
(a strong colour and contrast shift, like another dermoscope) makes the other images better.

The full-scale version is benchmarks/hitl_experiment.py (person photos, colour-shifted PH2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_nevseg.core.adapt import colour_shift, finetune_and_score, mean_dice
from napari_nevseg.core.image_io import read_image, read_mask
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.training import TrainConfig

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def _samples(transform):
    out = []
    for path in sorted((SAMPLES / "images").glob("*.png")):
        image = read_image(path)
        out.append((path.stem, transform(image), read_mask(SAMPLES / "masks" / path.name, image.shape[:2])))
    return out


@pytest.mark.slow
def test_finetuning_on_two_corrected_images_helps_the_others():
    import torch

    torch.set_num_threads(2)
    session = ModelSession.load("default", "cpu")
    samples = {name: (name, image, mask) for name, image, mask in _samples(colour_shift)}
    # IMD003 (hairy, the sample the shift hurts most: 0.94 -> 0.88 with the PH2 + ISIC default,
    # 0.95 -> 0.80 with the PH2-only one) is the one left to predict
    train = [samples["IMD008"], samples["IMD405"]]
    val, evaluation = [samples["IMD085"]], [samples["IMD003"]]
    config = TrainConfig(epochs=20, batch_size=2, lr=1e-3, patience=20, freeze_bn=True, device="cpu", seed=0)
    report, result = finetune_and_score(session, train, val, evaluation, config)
    assert report.dice_before < 0.90, "the shift must hurt the shipped model, or the test shows nothing"
    assert report.dice_after > report.dice_before + 0.03, report  # 0.881 -> 0.924 on 2026-12-01
    assert result.metadata["parent"] == "default"
    # the session's own model was not changed by the fine-tune
    assert mean_dice(session, evaluation) == pytest.approx(report.dice_before)


def test_colour_shift_is_a_fixed_strong_change():
    image = read_image(SAMPLES / "images" / "IMD003.png")
    shifted = colour_shift(image)
    assert shifted.shape == image.shape and shifted.dtype == image.dtype
    assert abs(shifted.astype(int) - image).mean() > 20
    assert (colour_shift(image) == shifted).all()
