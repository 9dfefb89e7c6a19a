"""Adopting a fine-tune result into the registry and the project, without Qt."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_nevseg.core.adopt import Adoption, adopt_finetune
from napari_nevseg.core.checkpoint import load_model
from napari_nevseg.core.project import Project
from napari_nevseg.core.registry import ModelRegistry
from napari_nevseg.core.training import TrainConfig, make_training_set, train
from tests.conftest import WORK_HW, blob_picture


def _run(init, lr: float, validate: bool = True):
    """A real fine-tune of ``init`` on two blob pictures, validated on a third (or on none)."""
    pictures = [(f"b{i}", *blob_picture(*WORK_HW, seed=300 + i)) for i in range(3)]
    train_set = make_training_set(pictures[:2], WORK_HW)
    val_set = make_training_set(pictures[2:], WORK_HW) if validate else None
    config = TrainConfig(epochs=2, batch_size=2, lr=lr, patience=2, freeze_bn=True, device="cpu", seed=0)
    gen = train(train_set, val_set, config, init)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


@pytest.fixture
def setup(project_dir, tiny_model_file):
    project = Project.open(project_dir)
    registry = ModelRegistry(project.models_dir)
    model, meta = load_model(tiny_model_file, "cpu")
    registry.add(model, meta, {"imported_from": "test"})  # v1, active
    yield project, registry, (model, {**meta, "version": "v1"})
    project.close()


def test_a_run_that_changed_no_weight_is_not_a_new_version(setup):
    project, registry, init = setup
    result = _run(init, lr=1e-2)  # no epoch beats the start: training hands back its weights
    assert result.best_epoch == 0
    outcome = adopt_finetune(result, registry, project)
    assert outcome.kind is Adoption.UNCHANGED and not outcome.adopted
    assert outcome.version is None and outcome.active == "v1" and outcome.parent == "v1"
    assert "did not beat v1 on the 1 validation images" in outcome.message and "v1 stays active" in outcome.message
    assert registry.versions() == ["default", "v1"] and registry.active == "v1"
    assert ModelRegistry(project.models_dir).versions() == ["default", "v1"]
    assert project.rounds == []
    assert project.audit()[-1]["detail"]["reason"] == "unchanged"


def test_a_run_that_changed_weights_becomes_the_active_version(setup):
    project, registry, init = setup
    result = _run(init, lr=5e-2, validate=False)  # a handful of images: train on all, no pool
    outcome = adopt_finetune(result, registry, project, min_gain=0.01)  # nothing to judge it by
    assert outcome.kind is Adoption.ADOPTED, outcome.message
    assert outcome.version == "v2" == registry.active == outcome.active
    assert outcome.metadata["version"] == "v2"
    # no pool to judge it by: the words say so, and that the next reviews will tell
    assert outcome.message.startswith("v2 learned from all 2 reviewed images") and "untested yet" in outcome.message
    assert Project.open(project.root).rounds[-1]["version"] == "v2"
    assert project.rounds[-1]["parent"] == "v1"
    assert project.rounds[-1]["train_images"] == ["b0", "b1"]
    stored, meta = load_model(registry.path("v2"), "cpu")
    assert meta["weights_sha256"] == outcome.weights_sha256
    a = next(iter(stored.state_dict().values()))
    assert np.array_equal(a.numpy(), next(iter(result.model.state_dict().values())).numpy())


def test_a_run_that_does_not_beat_its_start_can_be_refused(setup):
    project, registry, init = setup
    result = replace(_run(init, lr=5e-2, validate=False), val_dice_before=0.80, val_dice_best=0.805)
    outcome = adopt_finetune(result, registry, project, min_gain=0.01)
    assert outcome.kind is Adoption.NOT_BETTER and "did not beat v1" in outcome.message
    assert "0.800 → 0.805" in outcome.message
    assert registry.versions() == ["default", "v1"] and project.rounds == []


def test_a_run_that_beats_its_start_on_the_pool_says_by_how_much(setup):
    project, registry, init = setup
    result = _run(init, lr=5e-2, validate=False)
    result = replace(result, val_dice_before=0.81, val_dice_best=0.90,
                     metadata={**result.metadata, "training": {**result.metadata["training"], "val_images": ["b2"]}})
    outcome = adopt_finetune(result, registry, project, min_gain=0.0)
    assert outcome.adopted
    assert outcome.message.startswith("v2 needs fewer corrections on the 1 validation images: Dice 0.810 → 0.900")


def test_replayed_images_are_not_counted_as_the_projects(setup):
    from napari_nevseg.core.adopt import round_summary

    project, registry, init = setup
    result = _run(init, lr=5e-2, validate=False)
    training = {**result.metadata["training"], "train_images": ["b0", "b1", "IMD013"],
                "train_sources": ["project", "project", "replay"]}
    summary = round_summary(replace(result, metadata={**result.metadata, "training": training}))
    assert summary["train_images"] == ["b0", "b1"] and summary["replayed"] == ["IMD013"]
