"""The Models tab's summary of a version: readable sentences, not JSON (no Qt)."""

from __future__ import annotations

from napari_nevseg.core.checkpoint import read_metadata
from napari_nevseg.core.model_summary import describe_duration, describe_network, summarize_version
from napari_nevseg.core.session import default_model_path

FINE_TUNED = {
    "arch": "unet",
    "arch_params": {"width": 16, "depth": 4, "norm": "batch"},
    "parameters": 48_210,
    "work_size": [192, 256],
    "parent": "v1",
    "training": {
        "config": {"epochs": 25, "augment": {"rotate": False}},
        "train_images": ["a", "b", "c"],
        "val_images": ["d"],
        "epochs_run": 9,
        "stopped_by": "early stopping",
        "seconds": 41.4,
        "device": "cuda",
        "history": [{"epoch": 1, "loss": 0.5}],
    },
    "metrics": {"val_dice_before": 0.81234, "val_dice": 0.8877},
}


def _has_no_json(lines: list[str]) -> None:
    text = "\n".join(lines)
    for mark in ("{", "}", "[", "]", '"', "_dice", "arch_params"):
        assert mark not in text, (mark, text)


def test_the_shipped_model_reads_as_sentences():
    lines = summarize_version("default", read_metadata(default_model_path()), {"version": "default", "parent": None})
    assert lines[0] == "default: the model shipped with napari-nevseg"
    text = "\n".join(lines)
    assert "ResUNet" in text and "million parameters" in text and "works at 256\u00a0×\u00a0192\u00a0px" in text
    assert "learned from 1,903 images, validated on 175" in text and "on CPU" in text
    assert "PH2 test (32 images, never trained on): Dice 0.931" in text and "melanoma 0.882" in text
    assert "ISIC 2017 test split (200 images, never trained on): Dice 0.899, Jaccard 0.833" in text
    assert "validation Dice 0.867" in text and "→" not in text  # from scratch: no "before"
    assert "UTC" in lines[1]
    _has_no_json(lines)


def test_a_fine_tuned_version_says_its_parent_data_stop_and_gain():
    entry = {"version": "v2", "parent": "v1", "created": "2026-12-01T14:05:09+01:00"}
    lines = summarize_version("v2", FINE_TUNED, entry)
    assert lines[0] == "v2: fine-tuned from v1"
    assert lines[1] == "created 1 Dec 2026, 13:05 UTC"
    assert describe_network(FINE_TUNED) == "U-Net (width 16, depth 4, batch norm), 48,210 parameters; works at 256\u00a0×\u00a0192\u00a0px"
    assert "learned from 3 images, validated on 1; 9 of 25 epochs (early stopping) in 41 s on CUDA" in lines
    assert any(line.startswith("upright:") for line in lines)
    assert "validation Dice 0.812 → 0.888" in lines
    _has_no_json(lines)


def test_a_planned_fine_tune_says_its_recipe_and_keeps_clicks_apart_from_replay():
    meta = {**FINE_TUNED, "clicks": {"radius": 5.0}, "training": {
        **FINE_TUNED["training"], "train_images": ["a", "b", "IMD013"], "train_sources": ["project", "project", "replay"],
        "plan": {"regime": "fixed schedule", "images": 2, "pool": 0, "replay": True, "blend": 0.45}},
        "metrics": {"val_dice_before": None, "val_dice": None, "train_dice_before": 0.71, "train_dice_after": 0.9}}
    lines = summarize_version("v2", meta, {"version": "v2", "parent": "v1"})
    assert any(line.startswith("learned from 2 images (and 1 replayed dermoscopy images)") for line in lines)
    assert ("fine-tune recipe: fixed schedule, 2 images, none held out: judged by the next reviews; "
            "dermoscopy replayed, blended 45% toward the tuned weights") in lines
    assert any(line.startswith("takes clicks") for line in lines)
    assert "untested yet (no validation pool); on the images it learned from, Dice 0.710 → 0.900" in lines
    _has_no_json(lines)


def test_an_imported_version_and_missing_fields():
    lines = summarize_version("v3", {"arch": "segnet"}, {"imported_from": r"C:\models\clinic.safetensors"})
    assert lines == ["v3: imported from clinic.safetensors", "SegNet"]


def test_durations():
    assert describe_duration(41.4) == "41 s"
    assert describe_duration(568.9) == "9 min 29 s"
    assert describe_duration(7500) == "2 h 05 min"
