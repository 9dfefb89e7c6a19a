"""The fine-tune the widget, ``nevseg train --init`` and the benchmarks share
(``core.adapt.finetune``): replay of the shipped dermoscopy, the pull toward the starting
weights, and blending back toward them."""

from __future__ import annotations

import pytest
import torch

from napari_nevseg.core.adapt import finetune, run_to_end
from napari_nevseg.core.checkpoint import load_model
from napari_nevseg.core.replay import REPLAY_DIR, replay_samples
from napari_nevseg.core.training import TrainConfig, make_training_set, train
from napari_nevseg.core.training.blend import blend_weights
from napari_nevseg.core.training.plan import plan_finetune, with_overrides
from tests.conftest import WORK_HW, blob_picture


def _pictures(n: int, seed: int = 500):
    return [(f"b{i}", *blob_picture(*WORK_HW, seed=seed + i)) for i in range(n)]


def _distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(sum(((p - q) ** 2).sum() for p, q in zip(a.parameters(), b.parameters(), strict=True)))


def test_the_replay_set_ships_only_training_images_with_their_attribution():
    from napari_nevseg.core.checkpoint import read_metadata
    from napari_nevseg.core.session import default_model_path

    samples = replay_samples()
    assert len(samples) == 8
    training = read_metadata(default_model_path())["training"]
    stems = {s for s, _, _ in samples}
    assert stems <= set(training["train_images"])
    assert not stems & set(training["test_images"]) and not stems & set(training["val_images"])
    assert "Mendonça" in (REPLAY_DIR / "README.md").read_text(encoding="utf-8")
    assert all(mask.any() for _, _, mask in samples)


def test_finetune_replays_the_shipped_images_and_records_the_plan(tiny_model_file):
    init = load_model(tiny_model_file, "cpu")
    plan = with_overrides(plan_finetune(2, device="cpu", threads=1), epochs=2)
    result = run_to_end(finetune(init, _pictures(2), [], plan))
    training = result.metadata["training"]
    assert training["plan"]["regime"] == "fixed schedule" and training["plan"]["replay"]
    replayed = [s for s, src in zip(training["train_images"], training["train_sources"], strict=True) if src == "replay"]
    assert sorted(replayed) == sorted(s for s, _, _ in replay_samples())
    assert training["config"]["source_shares"] == {"project": plan.config.source_shares["project"],
                                                   "replay": plan.config.source_shares["replay"]}
    metrics = result.metadata["metrics"]
    assert 0.0 <= metrics["train_dice_before"] <= 1.0 and 0.0 <= metrics["train_dice_after"] <= 1.0


def test_the_anchor_holds_the_weights_near_the_start(tiny_model_file):
    init = load_model(tiny_model_file, "cpu")
    data = make_training_set(_pictures(4), WORK_HW)
    free, held = (
        run_to_end(train(data, None, TrainConfig(epochs=3, batch_size=2, lr=5e-2, device="cpu", anchor=anchor), init)).model
        for anchor in (None, 10.0)
    )
    assert _distance(held, init[0]) < 0.5 * _distance(free, init[0])


def test_blending_is_the_straight_line_between_start_and_tuned(tiny_model_file):
    start = load_model(tiny_model_file, "cpu")[0]
    tuned = load_model(tiny_model_file, "cpu")[0]
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(1.0)
    half = blend_weights(start, tuned, 0.5)
    for s, t, h in zip(start.parameters(), tuned.parameters(), half.parameters(), strict=True):
        assert torch.allclose(h, (s + t) / 2)
    assert _distance(blend_weights(start, tuned, 0.0), start) == 0.0
    assert _distance(blend_weights(start, tuned, 1.0), tuned) == 0.0
    with pytest.raises(ValueError, match="alpha"):
        blend_weights(start, tuned, 1.5)


@pytest.mark.parametrize("which", ["norms", "early", "late"])
def test_a_partial_finetune_changes_only_the_weights_it_names(tiny_model_file, which):
    """``TrainConfig.trainable`` (an experiment, docs/experiments.md): the other weights end
    exactly where they started, the named ones move."""
    from napari_nevseg.core.training.steps import _NORMS

    init = load_model(tiny_model_file, "cpu")
    start = {n: p.detach().clone() for n, p in init[0].named_parameters()}
    norm_names = {f"{m}.{p}" for m, mod in init[0].named_modules() if isinstance(mod, _NORMS)
                  for p, _ in mod.named_parameters(recurse=False)}
    part = {"early": ("encoder.0.", "encoder.1."), "late": ("decoder.",)}.get(which, ())
    data = make_training_set(_pictures(4), WORK_HW)
    config = TrainConfig(epochs=2, batch_size=2, lr=5e-2, device="cpu", trainable=which)
    tuned = run_to_end(train(data, None, config, init)).model
    moved = {n for n, p in tuned.named_parameters() if not torch.equal(p.detach(), start[n])}
    named = {n for n in start if n in norm_names or n.startswith(part)}
    assert moved and moved <= named
    with pytest.raises(ValueError, match="trainable must be one of"):
        run_to_end(train(data, None, TrainConfig(epochs=1, device="cpu", trainable="some"), init))
