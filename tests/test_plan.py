"""The fine-tune plan the data chooses (``core/training/plan.py``): what 2, 10 and 200 corrected
images get, and the refusals."""

from __future__ import annotations

import pytest

from napari_nevseg.core.training import plan as plans
from napari_nevseg.core.training.plan import plan_finetune, pool_size, with_overrides


def _steps(plan) -> int:
    config = plan.config
    per_epoch = config.epoch_size or plan.n_images
    return config.epochs * -(-per_epoch // min(config.batch_size, per_epoch))


def test_two_images_train_on_both_with_the_fixed_schedule():
    plan = plan_finetune(2)
    assert plan.pool == 0 and not plan.validated
    assert plan.config.patience is None  # nothing to early-stop on
    assert abs(_steps(plan) - plans.FIXED_STEPS) <= plans.FIXED_STEPS * 0.05
    assert plan.config.max_minutes == plans.FEW_MINUTES
    assert plan.replay and plan.config.source_shares == {"project": 0.5, "replay": 0.5}
    assert plan.config.freeze_bn and plan.config.augment.rotate
    assert "the next images reviewed will tell" in plan.reasons[0]


def test_ten_images_still_train_on_all_of_them():
    plan = plan_finetune(10)
    assert plan.pool == 0 and plan.config.patience is None
    # each epoch: the 10 images once and the replay's share beside them
    assert plan.config.epoch_size == 20
    assert abs(_steps(plan) - plans.FIXED_STEPS) <= plans.FIXED_STEPS * 0.05
    assert plan.to_meta()["regime"] == "fixed schedule"


def test_two_hundred_images_hold_out_a_pool_and_early_stop_on_it():
    plan = plan_finetune(200)
    assert plan.pool == 40 == pool_size(200) and plan.validated
    assert plan.config.patience == plans.PATIENCE and plan.config.epochs == plans.MAX_EPOCHS
    assert plan.config.epoch_size == 320  # the 160 trained on, once each, and as many replayed
    assert plans.FEW_MINUTES < plan.config.max_minutes <= plans.MANY_MINUTES
    assert plan.to_meta()["regime"] == "validation pool"
    assert "beats the starting model" in plan.reasons[0]


def test_the_pool_starts_at_the_threshold():
    assert pool_size(plans.POOL_FROM - 1) == 0
    assert pool_size(plans.POOL_FROM) == max(plans.POOL_MIN, round(0.2 * plans.POOL_FROM))


def test_upright_is_the_one_switch():
    upright = plan_finetune(10, upright=True)
    assert not upright.config.augment.rotate and upright.to_meta()["upright"] is True
    # objects with an up are not lesions: nothing of dermoscopy to replay or blend back to
    assert not upright.replay and upright.blend == 1.0 and upright.config.source_shares is None
    assert upright.config.augment.copy_paste > 0 and upright.config.lr > plan_finetune(10).config.lr
    lesions = plan_finetune(10)
    assert lesions.replay and lesions.blend == plans.BLEND < 1.0


def test_without_the_replay_folder_the_epoch_is_the_images_alone():
    plan = plan_finetune(10, replay_available=False)
    assert not plan.replay and plan.config.source_shares is None and plan.config.epoch_size is None


def test_nothing_to_learn_is_refused_in_words():
    with pytest.raises(ValueError, match="accept or correct"):
        plan_finetune(0)
    with pytest.raises(ValueError, match="already learned all 5"):
        plan_finetune(5, n_new=0)
    with pytest.raises(ValueError, match="leaves none"):
        plan_finetune(3, pool=3)


def test_a_caller_pool_overrides_the_threshold():
    plan = plan_finetune(10, pool=2)  # a project whose earlier pool stays held out
    assert plan.validated and plan.config.patience == plans.PATIENCE


def test_settings_by_hand_are_recorded_in_the_reasons():
    plan = with_overrides(plan_finetune(10), epochs=3, lr=1e-3)
    assert plan.config.epochs == 3 and plan.config.lr == 1e-3
    assert plan.reasons[-1] == "set by hand: epochs 3, lr 0.001"
    assert with_overrides(plan_finetune(10)) == plan_finetune(10)


def test_a_run_behind_the_time_limits_pace_anneals_by_the_clock():
    """The plan's runs end with the learning rate at its floor when the 2-minute limit stops
    them on a slow machine (the widget's niced thread), instead of a schedule cut off mid-way."""
    from types import SimpleNamespace

    from napari_nevseg.core.training.steps import scheduled_step

    assert plan_finetune(10).config.anneal_by_time
    config = SimpleNamespace(anneal_by_time=True)
    run = SimpleNamespace(config=config, started=0.0, deadline=120.0, step=30, total=150)
    assert scheduled_step(run, now=30.0) == 37  # a quarter of the time: a quarter of the schedule
    assert scheduled_step(run, now=10.0) == 30  # ahead of the clock: the step count
    assert scheduled_step(run, now=119.9) == 149  # the floor at the deadline
    run.config = SimpleNamespace(anneal_by_time=False)
    assert scheduled_step(run, now=119.9) == 30
