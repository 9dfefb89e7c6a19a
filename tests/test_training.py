"""The training generator: progress per step, cancel, determinism, split, validation, early stop."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from napari_nevseg.core.augment import AugmentConfig
from napari_nevseg.core.model import UNet
from napari_nevseg.core.training import (
    TrainConfig,
    TrainingSet,
    TrainProgress,
    TrainResult,
    evaluate_dice,
    inherited_tta,
    make_training_set,
    train,
)

WORK = (32, 48)
TINY = {"width": 4, "depth": 2, "norm": "batch"}


def _samples(make_blob, n, start=0):
    out = []
    for i in range(n):
        rgb, mask = make_blob(40 + i, 60, seed=start + i)
        out.append((f"s{start + i}", rgb, mask.astype(np.uint8) * 255))
    return out


@pytest.fixture
def data(make_blob):
    return make_training_set(_samples(make_blob, 6), WORK), make_training_set(_samples(make_blob, 2, 100), WORK)


def _config(**kw):
    base = dict(arch="unet", arch_params=dict(TINY), work_size=WORK, epochs=2, batch_size=4, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def _run(gen):
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return steps, stop.value


def test_make_training_set(make_blob):
    samples = _samples(make_blob, 3)
    samples[1] = (samples[1][0], samples[1][1].astype(np.uint16) * 257, samples[1][2] > 0)  # other types
    ts = make_training_set(samples, WORK)
    assert len(ts) == 3 and ts.stems == ["s0", "s1", "s2"]
    assert ts.images.shape == (3, 3, *WORK) and ts.images.dtype == torch.uint8
    assert ts.masks.shape == (3, 1, *WORK) and ts.masks.dtype == torch.float32
    assert 0 <= ts.masks.min().item() and ts.masks.max().item() == 1.0
    assert 0.05 < ts.masks.mean().item() < 0.5
    empty = make_training_set([], WORK)
    assert len(empty) == 0 and empty.images.shape == (0, 3, *WORK)


def test_make_training_set_size_mismatch(make_blob):
    rgb, mask = make_blob(40, 60, seed=0)
    with pytest.raises(ValueError, match="differ in size"):
        make_training_set([("x", rgb, mask[:-1])], WORK)


def test_progress_per_step_and_result(data):
    train_set, val_set = data
    steps, result = _run(train(train_set, val_set, _config()))
    assert all(isinstance(p, TrainProgress) for p in steps)
    assert [p.step for p in steps] == [1, 2, 3, 4]  # 6 images, batch 4: 2 steps x 2 epochs
    assert {p.total_steps for p in steps} == {4}
    assert [p.epoch for p in steps] == [1, 1, 2, 2]
    assert all(math.isfinite(p.loss) and p.loss > 0 for p in steps)
    assert all(p.lr > 0 and p.elapsed_s >= 0 and p.remaining_s >= 0 for p in steps)
    # validation on the last step of each epoch only
    assert [p.val_dice is not None for p in steps] == [False, True, False, True]
    assert [p.epoch_loss is not None for p in steps] == [False, True, False, True]
    assert all(0 <= p.val_dice <= 1 for p in steps if p.val_dice is not None)
    assert isinstance(result, TrainResult)
    assert not result.model.training
    assert next(result.model.parameters()).device.type == "cpu"
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all("val_dice" in h for h in result.history)
    meta = result.metadata
    assert meta["arch"] == "unet" and meta["arch_params"] == TINY and meta["work_size"] == list(WORK)
    assert meta["training"]["train_images"] == train_set.stems
    assert meta["training"]["val_images"] == val_set.stems
    assert meta["training"]["epochs_run"] == 2
    assert meta["metrics"]["val_dice"] is not None and meta["metrics"]["val_dice_before"] is not None
    assert len(meta["normalization"]["mean"]) == 3 and all(s > 0 for s in meta["normalization"]["std"])
    assert meta["parameters"] == sum(p.numel() for p in result.model.parameters())


def test_result_saves_and_loads(data, tmp_path):
    from napari_nevseg.core.checkpoint import load_model, save_model

    train_set, val_set = data
    _, result = _run(train(train_set, val_set, _config(epochs=1)))
    loaded, meta = load_model(save_model(tmp_path / "m.safetensors", result.model, result.metadata))
    assert meta["training"]["train_images"] == train_set.stems
    sd = result.model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())


def test_close_midway_leaves_init_untouched(data, model_meta):
    train_set, val_set = data
    torch.manual_seed(0)
    init_model = UNet(**TINY)
    before = copy.deepcopy(init_model.state_dict())
    gen = train(train_set, val_set, _config(epochs=5), init=(init_model, model_meta(version="v1")))
    first = next(gen)
    assert first.step == 1
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
    after = init_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fine_tune_never_modifies_init(data, model_meta):
    train_set, val_set = data
    init_model = UNet(**TINY)
    before = copy.deepcopy(init_model.state_dict())
    _, result = _run(train(train_set, val_set, _config(epochs=1, freeze_bn=True), init=(init_model, model_meta(version="v1"))))
    assert all(torch.equal(before[k], v) for k, v in init_model.state_dict().items())
    assert result.model is not init_model
    assert result.metadata["parent"] == "v1"
    assert result.metadata["normalization"] == model_meta()["normalization"]  # kept from the parent


@pytest.mark.parametrize(("rotate", "expected"), [(True, 4), (False, 2)])
def test_fine_tune_keeps_the_flips_it_was_taught(data, model_meta, rotate, expected):
    """A model fine-tuned without rotations (people stand up) keeps only the left-right flip at
    test time; one trained with rotations keeps all four of its parent's flips."""
    train_set, _ = data
    init = (UNet(**TINY), model_meta(version="v1", tta=4))
    _, result = _run(train(train_set, None, _config(epochs=1, freeze_bn=True, augment=AugmentConfig(rotate=rotate)), init=init))
    assert result.metadata["tta"] == expected
    assert inherited_tta(None, AugmentConfig()) == 1  # from scratch: no test-time flips
    assert inherited_tta({"tta": 1}, AugmentConfig(rotate=False)) == 1


def test_same_seed_same_weights(data):
    train_set, val_set = data
    _, a = _run(train(train_set, val_set, _config(seed=7)))
    _, b = _run(train(train_set, val_set, _config(seed=7)))
    _, c = _run(train(train_set, val_set, _config(seed=8)))
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.history == b.history
    assert not all(torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_early_stopping(data):
    """With a learning rate of 0 and frozen norms nothing improves: patience 2 stops at epoch 2."""
    train_set, val_set = data
    steps, result = _run(train(train_set, val_set, _config(epochs=10, lr=0.0, freeze_bn=True, patience=2)))
    assert result.stopped_by == "early stopping"
    assert len(result.history) == 2
    assert steps[-1].epoch == 2
    assert result.metadata["training"]["stopped_by"] == "early stopping"


def test_without_validation(data):
    train_set, _ = data
    steps, result = _run(train(train_set, None, _config(epochs=1)))
    assert all(p.val_dice is None and p.best_val_dice is None for p in steps)
    assert result.metadata["training"]["val_images"] == []
    assert result.metadata["metrics"]["val_dice"] is None
    assert result.metadata["training"]["world_size"] == 1  # one process (torchrun: tests/test_ddp.py)
    assert result.best_epoch == 1


def test_training_learns_the_blobs(make_blob):
    train_set = make_training_set(_samples(make_blob, 12), WORK)
    val_set = make_training_set(_samples(make_blob, 4, 200), WORK)
    config = _config(arch_params={"width": 8, "depth": 2, "norm": "batch"}, epochs=12, lr=1e-2, warmup_fraction=0.0)
    _, result = _run(train(train_set, val_set, config))
    assert result.val_dice_best > result.val_dice_before
    assert result.val_dice_best > 0.7
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_bad_inputs(data):
    train_set, val_set = data
    empty = TrainingSet(train_set.images[:0], train_set.masks[:0], [])
    with pytest.raises(ValueError, match="no training images"):
        next(train(empty, val_set, _config()))
    with pytest.raises(ValueError, match="works at"):
        next(train(train_set, val_set, _config(work_size=(64, 64))))


def test_evaluate_dice_perfect_and_empty(data):
    train_set, _ = data

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return self.masks * 20 - 10

    oracle = Oracle()
    oracle.masks = train_set.masks
    score = evaluate_dice(oracle, train_set, [0.5] * 3, [0.2] * 3, torch.device("cpu"), batch_size=len(train_set))
    assert score == pytest.approx(1.0)
    empty = TrainingSet(train_set.images[:0], train_set.masks[:0], [])
    assert math.isnan(evaluate_dice(oracle, empty, [0.5] * 3, [0.2] * 3, torch.device("cpu")))


def _max_change(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())


def test_weight_average_is_what_is_kept(data, model_meta):
    """With ``ema_decay`` the returned weights are the moving average: a decay of 0 keeps the
    last step's weights (the same as no average), a decay next to 1 barely leaves the start."""
    train_set, _ = data
    torch.manual_seed(0)
    init = (UNet(**TINY), model_meta(version="v1"))
    start = init[0].state_dict()

    def run(decay):
        return _run(train(train_set, None, _config(epochs=3, lr=1e-2, ema_decay=decay), init=init))[1]

    plain, last, slow = run(None), run(0.0), run(1 - 1e-9)
    assert _max_change(plain.model.state_dict(), last.model.state_dict()) == 0.0
    assert _max_change(plain.model.state_dict(), start) > 1e-3
    assert _max_change(slow.model.state_dict(), start) < 1e-6
    assert slow.metadata["training"]["config"]["ema_decay"] == 1 - 1e-9


def test_weight_average_is_validated_and_kept(make_blob):
    """Early stopping scores the average and keeps its best epoch: not the raw weights (a run
    with the same seed and no average), and the kept model scores what was reported."""
    train_set = make_training_set(_samples(make_blob, 12), WORK)
    val_set = make_training_set(_samples(make_blob, 4, 200), WORK)

    def run(decay):
        config = _config(arch_params={"width": 8, "depth": 2, "norm": "batch"}, epochs=6, lr=1e-2,
                         warmup_fraction=0.0, ema_decay=decay)
        return _run(train(train_set, val_set, config))

    steps, averaged = run(0.5)
    _, raw = run(None)
    scores = [p.val_dice for p in steps if p.val_dice is not None]
    assert averaged.val_dice_best == max([averaged.val_dice_before, *scores])
    assert averaged.best_epoch > 0, "no epoch beat the start: the test would show nothing"
    assert _max_change(averaged.model.state_dict(), raw.model.state_dict()) > 1e-4
    mean, std = averaged.metadata["normalization"]["mean"], averaged.metadata["normalization"]["std"]
    assert evaluate_dice(averaged.model, val_set, mean, std, torch.device("cpu")) == pytest.approx(averaged.val_dice_best)


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5])
def test_weight_average_decay_out_of_range(data, decay):
    train_set, _ = data
    threads = torch.get_num_threads()
    with pytest.raises(ValueError, match="ema_decay"):
        next(train(train_set, None, _config(ema_decay=decay, threads=1)))
    assert torch.get_num_threads() == threads  # refused before the thread count was touched
