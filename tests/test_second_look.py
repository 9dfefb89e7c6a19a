"""The automatic mask's second look (core/second_look.py): where it looks, that it decides only
the pixels of its box, that models without the setting predict as before, that every way of
predicting (one image, many, ``nevseg predict``'s pipeline) takes the same look, and that a
fine-tuned version keeps its parent's setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_nevseg.core.adapt import run_to_end
from napari_nevseg.core.checkpoint import load_model
from napari_nevseg.core.errors import ModelFileError
from napari_nevseg.core.image_io import read_mask
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.pipeline import predict_files
from napari_nevseg.core.second_look import SecondLook, SecondLookSettings, paste_second_look, plan_second_look
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.training import TrainConfig, make_training_set, train
from napari_nevseg.core.window import resolution_gain
from tests.conftest import WORK_HW, blob_picture
from tests.synthetic import small_lesion_picture

LOOK = {"margin": 0.1, "min_gain": 1.5}


def _looking(session: ModelSession) -> ModelSession:
    model, meta = session.cpu_copy()
    return ModelSession(model, {**meta, "second_look": LOOK}, session.device, "looking")


def test_the_plan_looks_around_the_largest_region_and_only_where_there_are_pixels_to_gain():
    settings = SecondLookSettings(**LOOK)
    assert plan_second_look(torch.zeros(WORK_HW), (640, 960), 0.5, settings) is None
    low = torch.zeros(WORK_HW)
    low[10:14, 20:26] = 0.9  # 4 x 6 working pixels: rows 200-280, columns 400-520 of a 640 x 960 photo
    low[2, 2] = 0.9  # a speck: not the lesion
    assert plan_second_look(low, WORK_HW, 0.5, settings) is None  # already at the working size
    look = plan_second_look(low, (640, 960), 0.5, settings)
    assert look is not None and look.low is None
    assert look.box == (192, 388, 288, 532)  # widened by 10% of its size on each side
    top, left, bottom, right = look.window
    assert top <= 192 and left <= 388 and bottom >= 288 and right >= 532
    assert resolution_gain((640, 960), WORK_HW, look.window) >= 1.5
    assert plan_second_look(low, (640, 960), 0.5, SecondLookSettings(0.1, 100.0)) is None


def test_the_second_pass_decides_only_the_pixels_of_its_box():
    full = torch.full((100, 200), 0.2)
    look = SecondLook((10, 20, 60, 120), (20, 40, 50, 100), torch.ones(WORK_HW))
    out = paste_second_look(full, look)
    inside = torch.zeros(100, 200, dtype=torch.bool)
    inside[20:50, 40:100] = True
    assert (out[inside] == 1).all() and (out[~inside] == 0.2).all() and (full == 0.2).all()


def test_a_model_without_the_setting_takes_no_second_look(blob_session):
    rgb, _ = small_lesion_picture(240, 360, seed=3, share=0.25)
    low = blob_session.predictor.low_res_with_fallback([rgb])[0]
    assert blob_session.predictor.second_look is None
    assert blob_session.predictor.look_again([rgb], [low]) == [None]


def test_a_small_lesion_in_a_big_photo_is_redrawn_inside_the_box_and_better(blob_session):
    looking = _looking(blob_session)
    gains = []
    for seed in range(4):
        rgb, truth = small_lesion_picture(320, 480, seed=seed, share=0.22)
        plain, second = blob_session.predict(rgb), looking.predict(rgb)
        low = looking.predictor.low_res_with_fallback([rgb])[0]
        look = looking.predictor.look_again([rgb], [low])[0]
        assert look is not None, "a lesion a fifth of the photo's side earns a second look"
        r0, c0, r1, c1 = look.box
        outside = np.ones(truth.shape, bool)
        outside[r0:r1, c0:c1] = False
        assert np.array_equal(second.mask[outside], plain.mask[outside])
        gains.append(dice(second.mask, truth) - dice(plain.mask, truth))
    print("Dice gain of the second look:", [round(g, 3) for g in gains])
    assert np.mean(gains) > 0.02, gains


def test_one_image_many_images_and_the_files_pipeline_take_the_same_look(blob_session, tmp_path):
    from PIL import Image

    looking = _looking(blob_session)
    pictures = [small_lesion_picture(320, 480, seed=s, share=0.22)[0] for s in range(3)]
    files = []
    for i, rgb in enumerate(pictures):
        files.append(tmp_path / f"photo{i}.png")
        Image.fromarray(rgb).save(files[-1])
    one = [looking.predict(rgb).mask for rgb in pictures]
    many = [p.mask for p in looking.predictor.predict_many(pictures, batch_size=2)]
    results = list(predict_files(files, tmp_path / "out", looking, batch_size=2))
    written = [read_mask(tmp_path / "out" / f"photo{i}.png", pictures[i].shape[:2]) for i in range(3)]
    assert all(r.error is None for r in results)
    for a, b, c, plain in zip(one, many, written, (blob_session.predict(rgb).mask for rgb in pictures), strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
        assert not np.array_equal(a, plain)


def test_the_setting_is_read_from_the_model_file_and_bad_values_are_refused():
    assert SecondLookSettings.from_meta({}) is None
    assert SecondLookSettings.from_meta({"second_look": LOOK}) == SecondLookSettings(0.1, 1.5)
    assert SecondLookSettings(0.1, 1.5).to_meta() == LOOK
    for bad in ({"margin": "wide"}, {"margin": 0.1}, {"margin": 2.0, "min_gain": 1.5}, {"margin": 0.1, "min_gain": 0.5}):
        with pytest.raises(ModelFileError, match="second_look"):
            SecondLookSettings.from_meta({"second_look": bad})


def test_a_fine_tuned_version_keeps_its_parents_second_look(tiny_model_file):
    model, meta = load_model(tiny_model_file, "cpu")
    data = make_training_set([(f"b{i}", *blob_picture(*WORK_HW, seed=40 + i)) for i in range(2)], WORK_HW)
    config = TrainConfig(epochs=1, batch_size=2, device="cpu")
    looked = run_to_end(train(data, None, config, (model, {**meta, "second_look": LOOK})))
    assert looked.metadata["second_look"] == LOOK
    plain = run_to_end(train(data, None, config, (model, meta)))
    assert "second_look" not in plain.metadata
