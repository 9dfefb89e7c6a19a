"""The widget's *Predict project* worker (widgets/_workers.py), without Qt: batched like
``nevseg predict``, yet every image's mask is the one ``ModelSession.predict`` gives, the
results come in the project's order, and a broken image is reported in its place."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from napari_nevseg.core.image_io import read_image, read_mask
from napari_nevseg.core.project import Project
from napari_nevseg.widgets._workers import predict_project

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def _project(tmp_path: Path, copies: int) -> Project:
    images = tmp_path / "project" / "images"
    images.mkdir(parents=True)
    for i in range(copies):
        for image in sorted((SAMPLES / "images").glob("*.png")):
            shutil.copy(image, images / f"{image.stem}_{i}.png")
    (images / "broken.png").write_bytes(b"not a png")
    return Project.open(images.parent)


def test_batched_project_prediction_equals_one_image_at_a_time(tmp_path, click_session):
    project = _project(tmp_path, copies=3)  # 12 images and a broken one: batches of 5 leave a rest
    todo = sorted(project.records)
    results = list(predict_project(click_session, project, todo, None, _cleanup(), batch_size=5, workers=2))
    assert [r.key for r in results] == todo
    broken = next(r for r in results if r.key == "broken")
    assert broken.error and broken.mask is None
    for result in results:
        if result.key == "broken":
            continue
        image = read_image(project.image_path(result.key))
        expected = click_session.predict(image, cleanup=_cleanup())
        # batched convolutions may round differently from single ones: a pixel at the threshold
        assert np.count_nonzero(result.mask != expected.mask) <= 4
        assert abs(result.uncertainty - expected.uncertainty) < 1e-4
        assert result.model_hash == click_session.content_hash
        written = read_mask(project.prediction_path(result.key), image.shape[:2])
        np.testing.assert_array_equal(written, result.mask)


def test_a_run_stopped_between_images_leaves_no_unrecorded_prediction_file(tmp_path, click_session):
    """napari's worker stops by no longer asking the generator for the next image (it does not
    close it): every prediction file on disk must belong to an image already yielded (whose
    record the GUI thread commits), however far decoding and clean-up had got ahead."""
    import time

    project = _project(tmp_path, copies=2)
    todo = sorted(project.records)
    gen = predict_project(click_session, project, todo, None, _cleanup(), batch_size=4, workers=2)
    yielded = {next(gen).key for _ in range(2)}
    time.sleep(1.0)  # the pool finishes what it had started for this batch
    written = {p.stem for p in project.prediction_path(todo[0]).parent.glob("*.png")}
    assert written == yielded
    gen.close()  # the pool is let go
    import threading

    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("nevseg-predict") and t.is_alive()]


def _cleanup():
    from napari_nevseg.core.postprocess import Cleanup

    return Cleanup()


def test_network_passes_are_whole_batches_unless_a_person_is_clicking(tmp_path, click_model_file, monkeypatch):
    """A project prediction runs the network on whole batches (fastest), but a guided prediction
    (a click) makes it hold the model's lock for two images at a time for the next half minute,
    so the next click never queues behind a whole batch; after that, whole batches again."""
    from napari_nevseg.core import session as session_module
    from napari_nevseg.core.session import ModelSession

    session = ModelSession.load(click_model_file, "cpu")
    passes: list[int] = []
    original = session.predictor.low_res_with_fallback

    def counted(rgbs, on_fallback):
        passes.append(len(rgbs))
        return original(rgbs, on_fallback)

    monkeypatch.setattr(session.predictor, "low_res_with_fallback", counted)
    project = _project(tmp_path, copies=2)
    todo = [stem for stem in sorted(project.records) if stem != "broken"]

    def run() -> list[int]:
        passes.clear()
        list(predict_project(session, project, todo, None, _cleanup(), batch_size=8, workers=2))
        return list(passes)

    assert run() == [8]
    image = read_image(project.image_path(todo[0]))
    session.predict(image, clicks=[(image.shape[0] / 2, image.shape[1] / 2, True)], cleanup=_cleanup())
    assert run() == [2, 2, 2, 2]
    session._interactive_at -= session_module.INTERACTIVE_GRACE_S + 1  # the half minute has passed
    assert run() == [8]


def test_the_project_worker_takes_the_second_look_one_image_prediction_takes(tmp_path, blob_session):
    """The widget's project prediction finishes masks in a pool; the second look is a network
    pass, taken beside the first under the session's lock, so both paths give the same mask."""
    from PIL import Image

    from napari_nevseg.core.session import ModelSession
    from tests.synthetic import small_lesion_picture

    model, meta = blob_session.cpu_copy()
    looking = ModelSession(model, {**meta, "second_look": {"margin": 0.1, "min_gain": 1.5}}, blob_session.device, "look")
    images = tmp_path / "project" / "images"
    images.mkdir(parents=True)
    for seed in range(3):
        Image.fromarray(small_lesion_picture(320, 480, seed=seed, share=0.22)[0]).save(images / f"photo{seed}.png")
    project = Project.open(images.parent)
    todo = sorted(project.records)
    results = list(predict_project(looking, project, todo, None, _cleanup(), batch_size=2, workers=2))
    for result in results:
        image = read_image(project.image_path(result.key))
        np.testing.assert_array_equal(result.mask, looking.predict(image, cleanup=_cleanup()).mask)
        assert not np.array_equal(result.mask, blob_session.predict(image, cleanup=_cleanup()).mask)
