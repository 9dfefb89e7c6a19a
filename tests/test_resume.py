"""Resumable training: a run stopped after a checkpoint and resumed ends with the weights of an
uninterrupted run; a checkpoint of another run is refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_nevseg.core.errors import ResumeError
from napari_nevseg.core.model import UNet
from napari_nevseg.core.training import Checkpointing, TrainConfig, make_training_set, train
from napari_nevseg.core.training import resume as resume_module

WORK = (32, 48)
TINY = {"width": 4, "depth": 2, "norm": "batch"}


def _samples(make_blob, n, start=0):
    return [(f"s{start + i}", *make_blob(40, 60, seed=start + i)) for i in range(n)]


@pytest.fixture
def data(make_blob):
    return make_training_set(_samples(make_blob, 6), WORK), make_training_set(_samples(make_blob, 2, 100), WORK)


def _config(**kw):
    base = dict(arch="unet", arch_params=dict(TINY), work_size=WORK, epochs=5, batch_size=4, device="cpu",
                seed=3, lr=1e-2, ema_decay=0.5, patience=4)
    return TrainConfig(**{**base, **kw})


def _finish(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _stop_after_epoch(gen, epoch):
    for progress in gen:
        if progress.epoch == epoch and progress.epoch_loss is not None:
            gen.close()
            return
    raise AssertionError("the run ended before the epoch to stop at")


@pytest.mark.parametrize("fine_tune", [False, True])
def test_stopped_and_resumed_equals_uninterrupted(data, tmp_path, model_meta, fine_tune):
    """From scratch with validation and early stopping; fine-tuning without validation."""
    train_set, val_set = data
    val_set = None if fine_tune else val_set
    torch.manual_seed(0)
    init = (UNet(**TINY), model_meta(version="v1")) if fine_tune else None
    whole = _finish(train(train_set, val_set, _config(), init))
    ckpt = Checkpointing(tmp_path / "m.safetensors.resume", every=2)
    _stop_after_epoch(train(train_set, val_set, _config(), init, checkpoint=ckpt), epoch=3)
    assert ckpt.path.is_file()  # written at the end of epoch 2
    resumed = _finish(train(train_set, val_set, _config(), init, checkpoint=Checkpointing(ckpt.path, 2, resume=True)))
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert worst <= 1e-6
    assert resumed.history == whole.history and resumed.best_epoch == whole.best_epoch
    assert resumed.metadata["metrics"] == whole.metadata["metrics"]
    # the weights kept were made after the checkpoint, so a resume that skipped work would show
    assert whole.best_epoch > 2, whole.history


def test_checkpointing_does_not_change_the_run(data, tmp_path):
    train_set, val_set = data
    plain = _finish(train(train_set, val_set, _config(epochs=3)))
    saved = _finish(train(train_set, val_set, _config(epochs=3), checkpoint=Checkpointing(tmp_path / "c", every=1)))
    assert all(torch.equal(v, saved.model.state_dict()[k]) for k, v in plain.model.state_dict().items())


def _checkpoint_of(data, tmp_path, **kw):
    train_set, val_set = data
    path = tmp_path / "c.resume"
    _stop_after_epoch(train(train_set, val_set, _config(**kw), checkpoint=Checkpointing(path, every=1)), epoch=1)
    return path


def test_resume_refuses_other_settings_and_data(data, tmp_path):
    train_set, val_set = data
    path = _checkpoint_of(data, tmp_path)
    with pytest.raises(ResumeError, match=r"other settings \(lr 0.01 -> 0.02\)"):
        next(train(train_set, val_set, _config(lr=2e-2), checkpoint=Checkpointing(path, resume=True)))
    fewer = make_training_set([("s0", *_samples_like(train_set))], WORK)
    with pytest.raises(ResumeError, match="other training images"):
        next(train(fewer, val_set, _config(), checkpoint=Checkpointing(path, resume=True)))
    # the thread count and the device may change
    gen = train(train_set, val_set, _config(threads=1), checkpoint=Checkpointing(path, resume=True))
    assert next(gen).step == 3  # epoch 1 had 2 steps
    gen.close()


def test_a_checkpoint_from_before_a_new_setting_resumes(data, tmp_path):
    """A setting added since the checkpoint was written (ClickTraining.click_weight was) counts
    as its default: the same run resumes; another value of it is refused."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from napari_nevseg.core.training import ClickTraining

    train_set, val_set = data
    clicks = ClickTraining(radius=2.0, empty_fraction=0.0)
    path = _checkpoint_of(data, tmp_path, clicks=clicks)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    header = json.loads(metadata[resume_module._KEY])
    del header["identity"]["config"]["clicks"]["click_weight"]  # as a checkpoint written before they existed
    del header["identity"]["config"]["anneal_by_time"]
    save_file(load_file(str(path)), str(path), metadata={**metadata, resume_module._KEY: json.dumps(header)})
    gen = train(train_set, val_set, _config(clicks=clicks), checkpoint=Checkpointing(path, resume=True))
    assert next(gen).step == 3
    gen.close()
    heavier = ClickTraining(radius=2.0, empty_fraction=0.0, click_weight=5.0)
    with pytest.raises(ResumeError, match=r"other settings \(clicks"):
        next(train(train_set, val_set, _config(clicks=heavier), checkpoint=Checkpointing(path, resume=True)))


def _samples_like(train_set):
    image = train_set.images[0].permute(1, 2, 0).numpy()
    return image, train_set.masks[0, 0].numpy() > 0.5


def test_resume_refuses_another_number_of_processes(data, tmp_path, monkeypatch):
    train_set, val_set = data
    path = _checkpoint_of(data, tmp_path)
    monkeypatch.setattr(resume_module, "current_world_size", lambda: 2)
    with pytest.raises(ResumeError, match="written by 1 training process.*this run has 2"):
        next(train(train_set, val_set, _config(), checkpoint=Checkpointing(path, resume=True)))


def test_resume_without_or_with_a_broken_checkpoint(data, tmp_path):
    train_set, val_set = data
    with pytest.raises(ResumeError, match="no training checkpoint at"):
        next(train(train_set, val_set, _config(), checkpoint=Checkpointing(tmp_path / "none", resume=True)))
    broken = tmp_path / "broken.resume"
    broken.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ResumeError, match="not a readable training checkpoint"):
        next(train(train_set, val_set, _config(), checkpoint=Checkpointing(broken, resume=True)))
    with pytest.raises(ValueError, match="at least 1"):
        Checkpointing(broken, every=0)


def test_checkpoint_holds_no_pickle(data, tmp_path):
    """The file is safetensors with a JSON header: readable without unpickling anything."""
    import json

    from safetensors import safe_open

    path = _checkpoint_of(data, tmp_path)
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()["nevseg_train_state"])
        keys = set(handle.keys())
    assert header["world_size"] == 1 and header["counters"]["epoch"] == 1
    assert any(k.startswith("s.optimizer") for k in keys) and any(k.startswith("s.averaged") for k in keys)
    assert "s.generator" in keys and "s.torch_rng" in keys
    assert np.isfinite(header["counters"]["best_dice"])
