"""The click protocol (core/click_eval.py) and `nevseg evaluate --clicks` on the sample images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from napari_nevseg.cli import main
from napari_nevseg.core.click_eval import brush_corrector, click_curve, model_corrector, summarise
from tests.synthetic import blob_picture

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def _square(h=40, w=60):
    truth = np.zeros((h, w), bool)
    truth[10:30, 10:40] = True
    return truth


def test_an_oracle_needs_one_click_and_a_perfect_start_none():
    truth = _square()
    oracle = click_curve("a", truth, np.zeros_like(truth), lambda clicks, mask: truth, max_clicks=20)
    assert oracle.ious[:2] == (0.0, 1.0) and oracle.clicks_to(0.90, 20) == 1
    assert len(oracle.ious) == 2  # nothing left to correct: the annotator stops
    perfect = click_curve("b", truth, truth, lambda clicks, mask: mask, max_clicks=20)
    assert perfect.clicks_to(0.85, 20) == 0 and len(perfect.ious) == 1
    summary = summarise([oracle, perfect], 20)
    assert summary["noc90"] == 0.5 and summary["failure_rate"] == 0.0
    assert summary["iou_after_5"] == 1.0 and summary["iou_auto"] == 0.5


def test_a_corrector_that_never_helps_fails_after_every_click():
    truth = _square()
    start = truth.copy()
    start[:, 25:] = False
    stuck = click_curve("c", truth, start, lambda clicks, mask: mask, max_clicks=7)
    assert len(stuck.ious) == 8 and len(stuck.seconds_per_click) == 7
    summary = summarise([stuck], 7)
    assert summary["noc85"] == 7 and summary["noc90"] == 7 and summary["failure_rate"] == 1.0
    assert summary["by_size"]["over 10%"]["n"] == 1 and summary["by_size"]["under 2%"]["n"] == 0


def test_the_annotator_clicks_at_least_five_times_and_stops_at_090():
    truth = _square()
    calls = []

    def slowly(clicks, mask):  # each click adds a fifth of the lesion's columns
        calls.append(len(clicks))
        out = mask.copy()
        out[10:30, 10 : 10 + 6 * len(clicks)] = True
        return out

    curve = click_curve("d", truth, np.zeros_like(truth), slowly, max_clicks=20)
    assert calls == [1, 2, 3, 4, 5] and curve.clicks_to(0.90, 20) == 5
    assert curve.iou_after(1) == pytest.approx(0.2) and curve.iou_after(9) == 1.0


def test_the_brush_stamps_a_disk_of_diag_over_64():
    hw = (128, 128 * 3)
    brush = brush_corrector(hw)
    painted = brush([(64, 100, True)], np.zeros(hw, bool))
    radius = math.hypot(*hw) / 64
    assert abs(painted.sum() - math.pi * radius**2) < 4 * radius
    rows, cols = np.nonzero(painted)
    assert np.hypot(rows - 64, cols - 100).max() <= radius
    erased = brush([(64, 100, False)], painted)
    assert not erased.any()


def test_clicks_beat_the_brush_on_a_lesion_half_missing(click_session):
    """From a mask missing 40% of the lesion, the click model needs one or two clicks to IoU 0.90;
    the brush of the same protocol needs several times more."""
    rgb, truth = blob_picture(96, 128, seed=70)
    cols = np.flatnonzero(truth.any(axis=0))
    start = truth.copy()
    start[:, cols[0] + int(0.6 * (cols[-1] - cols[0])) :] = False
    model = click_curve("m", truth, start, model_corrector(click_session, rgb), max_clicks=20)
    brush = click_curve("b", truth, start, brush_corrector(truth.shape), max_clicks=20)
    assert model.clicks_to(0.90, 20) <= 2
    assert brush.clicks_to(0.90, 20) >= 3 * model.clicks_to(0.90, 20)


def test_nevseg_evaluate_clicks_and_brush_on_the_samples(click_model_file, capsys):
    args = ["evaluate", "--clicks", "3", "--images", str(SAMPLES / "images"), "--masks", str(SAMPLES / "masks"),
            "--model", str(click_model_file), "--brush", "--device", "cpu"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("click protocol: 4 images, at most 3 clicks")
    assert lines[1].split() == ["model", "brush"]
    rows = {line[:22].strip(): line[22:].split() for line in lines[2:10]}
    assert set(rows) == {"NoC@85", "NoC@90", "failure rate (@90)", "IoU automatic", "IoU after 1 click",
                         "IoU after 3 clicks", "IoU after 5 clicks", "ms per click"}
    assert rows["IoU automatic"][0] == rows["IoU automatic"][1]  # both start from the automatic mask
    assert any(line.startswith("lesion over 10% (") for line in lines)
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for mode in ("model", "brush"):
        summary = data["summary"][mode]
        assert summary["n"] == 4 and 0 <= summary["noc85"] <= summary["noc90"] <= 3
        assert 0.0 <= summary["failure_rate"] <= 1.0
        assert sum(v["n"] for v in summary["by_size"].values()) == 4
        assert all(1 <= len(ious) <= 4 for ious in data["ious"][mode].values())


def test_nevseg_evaluate_clicks_errors(capsys, tiny_model_file):
    base = ["evaluate", "--masks", str(SAMPLES / "masks")]
    assert main([*base, "--clicks", "3"]) == 2
    assert "--images" in capsys.readouterr().err
    assert main([*base, "--clicks", "3", "--images", str(SAMPLES / "images"), "--model", str(tiny_model_file)]) == 2
    assert "takes no clicks" in capsys.readouterr().err
    assert main([*base, "--brush", "--pred", str(SAMPLES / "masks")]) == 2
    assert "give --clicks" in capsys.readouterr().err


def test_brush_alone_with_a_model_without_clicks(capsys, tiny_model_file):
    assert main(["evaluate", "--clicks", "1", "--brush", "--images", str(SAMPLES / "images"),
                 "--masks", str(SAMPLES / "masks"), "--model", str(tiny_model_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "brush only" in out[0] and out[1].split() == ["brush"]


def test_evaluate_clicks_on_the_test_split_recorded_in_the_model(click_model_file, tmp_path, capsys):
    """`--subset test` picks the model's own held-out images for the click protocol too (the
    ISIC test split lives inside isic2017/train, beside images the model trained on)."""
    from napari_nevseg.core.checkpoint import load_model, save_model

    model, meta = load_model(click_model_file, "cpu")
    meta.pop("weights_sha256", None)
    meta.setdefault("training", {})["test_images"] = ["IMD003", "IMD085"]
    recorded = tmp_path / "with_split.safetensors"
    save_model(recorded, model, meta)
    base = ["evaluate", "--clicks", "2", "--images", str(SAMPLES / "images"), "--masks", str(SAMPLES / "masks"),
            "--device", "cpu", "--subset", "test"]
    assert main([*base, "--model", str(recorded)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("click protocol: 2 images")
    meta["training"]["test_images"] = []
    save_model(recorded, model, meta)
    assert main([*base, "--model", str(recorded)]) == 2
    assert "records no test split" in capsys.readouterr().err
