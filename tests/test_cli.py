"""The nevseg command line, in-process (cli.main) and once through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.cli import main
from tests.cli_checks import stderr_line as _stderr_line


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_predict_writes_full_size_masks(tmp_path, blob_model_file, make_blob, capsys):
    a = _png(tmp_path / "in" / "a.png", make_blob(37, 53, seed=1)[0])
    b = _png(tmp_path / "in" / "b.png", make_blob(80, 61, seed=2)[0])
    out = tmp_path / "out"
    code = main(["predict", str(tmp_path / "in"), "--out", str(out), "--model", str(blob_model_file),
                 "--device", "cpu", "--probabilities", "--overlays"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "predicted 2 of 2 images" in stdout
    for src, hw in ((a, (37, 53)), (b, (80, 61))):
        with Image.open(out / f"{src.stem}.png") as im:
            mask = np.asarray(im)
        assert mask.shape == hw and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 255}
        with Image.open(out / f"{src.stem}_prob.png") as im:
            assert im.size == (hw[1], hw[0]) and im.mode == "L"
        with Image.open(out / f"{src.stem}_overlay.png") as im:
            assert im.size == (hw[1], hw[0]) and im.mode == "RGB"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s}{k}.png" for s in ("a", "b") for k in ("", "_prob", "_overlay")] + ["nevseg-run.json"]
    )


def test_predict_same_stem_twice_and_quiet(tmp_path, tiny_model_file, make_blob, capsys):
    rgb = make_blob(20, 30, seed=0)[0]
    one = _png(tmp_path / "x" / "img.png", rgb)
    two = _png(tmp_path / "y" / "img.png", rgb)
    out = tmp_path / "out"
    assert main(["predict", str(one), str(two), "--out", str(out), "--model", str(tiny_model_file), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == {"img.png", "img-1.png", "nevseg-run.json"}
    assert capsys.readouterr().out.count("\n") == 1  # only the summary


def test_predict_no_cleanup_and_threshold(tmp_path, blob_model_file, make_blob):
    src = _png(tmp_path / "a.png", make_blob(40, 60, seed=4)[0])
    masks = {}
    for threshold in ("0.05", "0.95"):
        out = tmp_path / threshold
        assert main(["predict", str(src), "--out", str(out), "--model", str(blob_model_file),
                     "--threshold", threshold, "--no-cleanup"]) == 0
        masks[threshold] = np.asarray(Image.open(out / "a.png")) > 0
    assert masks["0.05"].sum() > masks["0.95"].sum()


def test_evaluate_pred_folder(tmp_path, capsys):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    full = np.zeros((10, 10), np.uint8)
    full[:5] = 255
    _png(ref / "a.png", full)
    _png(pred / "a.png", full)
    _png(ref / "b.png", full)
    half = np.zeros_like(full)
    half[:5, :5] = 255
    _png(pred / "b.png", half)
    assert main(["evaluate", "--pred", str(pred), "--masks", str(ref)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["image", "dice", "jaccard", "thr-jac"]
    assert lines[1].split() == ["a", "1.0000", "1.0000", "1.0000"]
    assert lines[2].split()[:3] == ["b", f"{2 * 25 / 75:.4f}", "0.5000"]
    assert lines[-1].startswith("MEAN (2)")
    assert main(["evaluate", "--pred", str(pred), "--masks", str(ref), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mean"]["n"] == 2
    assert data["mean"]["dice"] == pytest.approx((1 + 2 / 3) / 2)
    assert data["images"]["b"]["jaccard"] == pytest.approx(0.5)
    assert data["images"]["b"]["thresholded_jaccard"] == 0.0


def test_evaluate_with_model_and_strata(tmp_path, blob_model_file, make_blob, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for i in range(3):
        rgb, mask = make_blob(48, 64, seed=20 + i)
        _png(images / f"c{i}.png", rgb)
        _png(masks / f"c{i}.png", mask.astype(np.uint8) * 255)
    strata = tmp_path / "classes.csv"
    strata.write_text("id,diagnosis\nc0,nevus\nc1,nevus\nc2,melanoma\n")
    assert main(["evaluate", "--model", str(blob_model_file), "--images", str(images), "--masks", str(masks),
                 "--strata", str(strata), "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mean"]["n"] == 3 and data["mean"]["dice"] > 0.85
    assert data["groups"]["nevus"]["n"] == 2 and data["groups"]["melanoma"]["n"] == 1


def test_train_from_scratch_writes_a_loadable_model(pairs_dir, tmp_path, capsys):
    from napari_nevseg.core.checkpoint import load_model

    out = tmp_path / "model.safetensors"
    code = main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(out), "--init", "none", "--arch", "unet", "--width", "4", "--depth", "2",
                 "--work-size", "48x32",
                 "--epochs", "1", "--batch-size", "2", "--device", "cpu"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "epoch 1/1" in stdout and f"wrote {out}" in stdout
    model, meta = load_model(out)
    assert meta["work_size"] == [32, 48] and meta["arch_params"]["width"] == 4
    training = meta["training"]
    assert sorted(training["train_images"] + training["val_images"]) == [f"img{i}" for i in range(4)]
    assert len(training["val_images"]) == 1 and training["test_images"] == []
    assert meta["version"] == "model"
    # and the file predicts
    assert main(["predict", str(pairs_dir / "images"), "--out", str(tmp_path / "p"), "--model", str(out)]) == 0


def test_train_default_architecture_is_the_residual_unet(pairs_dir, tmp_path, capsys):
    from napari_nevseg.core.checkpoint import load_model
    from napari_nevseg.core.model import ResUNet

    out = tmp_path / "res.safetensors"
    code = main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(out), "--init", "none", "--channels", "4,8,8", "--work-size", "48x32",
                 "--epochs", "1", "--batch-size", "2", "--device", "cpu"])
    assert code == 0, capsys.readouterr()
    model, meta = load_model(out)
    assert isinstance(model, ResUNet)
    assert meta["arch"] == "resunet" and meta["arch_params"] == {"channels": [4, 8, 8], "norm": "instance", "top": "direct"}


@pytest.mark.parametrize("channels", ["4,x", "8", "4,0"])
def test_train_rejects_bad_channels(pairs_dir, tmp_path, capsys, channels):
    code = main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(tmp_path / "m.safetensors"), "--init", "none", "--channels", channels])
    assert code == 2
    err = capsys.readouterr().err
    assert "--channels" in err and "Traceback" not in err


def test_fine_tune_from_a_model_file(pairs_dir, tmp_path, tiny_model_file):
    from napari_nevseg.core.checkpoint import read_metadata

    out = tmp_path / "ft.safetensors"
    assert main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(out), "--init", str(tiny_model_file), "--epochs", "1", "--device", "cpu"]) == 0
    meta = read_metadata(out)
    assert meta["parent"] == "tiny" and meta["work_size"] == [32, 48]
    assert meta["training"]["config"]["freeze_bn"] is True
    assert meta["training"]["plan"]["reasons"][-1] == "set by hand: epochs 1"


def test_fine_tune_with_no_flag_follows_the_plan(pairs_dir, tmp_path, tiny_model_file, capsys):
    """``nevseg train --init MODEL`` alone: the data chooses (4 images: all trained on, the
    fixed schedule, replay), and the last line says the model is untested yet."""
    from napari_nevseg.core.checkpoint import read_metadata
    from napari_nevseg.core.training.plan import plan_finetune

    out = tmp_path / "ft.safetensors"
    assert main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(out), "--init", str(tiny_model_file)]) == 0
    printed = capsys.readouterr().out
    assert "fine-tuning on 4 images, validating on 0" in printed
    assert "untested yet" in printed.strip().splitlines()[-1]
    training = read_metadata(out)["training"]
    assert training["plan"]["regime"] == "fixed schedule" and training["plan"]["upright"] is False
    assert training["epochs_run"] == plan_finetune(4).config.epochs
    assert training["plan"]["blend"] == plan_finetune(4).blend < 1
    assert "replay" in training["train_sources"] and training["val_images"] == []


def test_fine_tune_with_a_pool_early_stops_on_it_and_says_how_it_did(pairs_dir, tmp_path, tiny_model_file, capsys):
    from napari_nevseg.core.checkpoint import read_metadata

    out = tmp_path / "ft.safetensors"
    assert main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(out), "--init", str(tiny_model_file), "--val-fraction", "0.25", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert "fine-tuning on 3 images, validating on 1, 0 held out" in printed
    assert "validation images" in printed[-1] and "Dice" in printed[-1]
    training = read_metadata(out)["training"]
    assert training["plan"]["regime"] == "validation pool" and len(training["val_images"]) == 1


# -- errors: one line, no traceback ---------------------------------------------------------------
def _predict(tmp_path, model, *inputs):
    return main(["predict", *map(str, inputs), "--out", str(tmp_path / "out"), "--model", str(model)])


def test_error_missing_file(tmp_path, tiny_model_file, capsys):
    assert _predict(tmp_path, tiny_model_file, tmp_path / "nope.png") == 2
    assert "does not exist" in _stderr_line(capsys)


def test_error_not_an_image(tmp_path, tiny_model_file, make_blob, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    good = _png(tmp_path / "good.png", make_blob(20, 20, seed=0)[0])
    assert _predict(tmp_path, tiny_model_file, bad, good) == 1  # the good one is still done
    line = _stderr_line(capsys)
    assert "bad.png" in line and "not an image" in line
    assert (tmp_path / "out" / "good.png").is_file() and not (tmp_path / "out" / "bad.png").exists()


def test_error_empty_folder(tmp_path, tiny_model_file, capsys):
    (tmp_path / "empty").mkdir()
    assert _predict(tmp_path, tiny_model_file, tmp_path / "empty") == 2
    assert "holds no image files" in _stderr_line(capsys)


def test_error_no_pairs(tmp_path, make_blob, capsys):
    _png(tmp_path / "images" / "a.png", make_blob(20, 20, seed=0)[0])
    _png(tmp_path / "masks" / "zzz.png", np.zeros((20, 20), np.uint8))
    code = main(["train", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                 "--out", str(tmp_path / "m.safetensors"), "--init", "none"])
    assert code == 2
    assert "no image in" in _stderr_line(capsys)
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("content", [b"", b"garbage bytes that are not a model", b"\x80\x04\x95 pickle"])
def test_error_bad_model_file(tmp_path, make_blob, capsys, content):
    model = tmp_path / "bad.safetensors"
    model.write_bytes(content)
    src = _png(tmp_path / "a.png", make_blob(20, 20, seed=0)[0])
    assert _predict(tmp_path, model, src) == 2
    assert str(model) in _stderr_line(capsys)


def test_error_missing_model(tmp_path, make_blob, capsys):
    src = _png(tmp_path / "a.png", make_blob(20, 20, seed=0)[0])
    assert _predict(tmp_path, tmp_path / "none.safetensors", src) == 2
    assert "does not exist" in _stderr_line(capsys)


def test_error_out_is_a_file(tmp_path, tiny_model_file, make_blob, capsys):
    src = _png(tmp_path / "a.png", make_blob(20, 20, seed=0)[0])
    (tmp_path / "out").write_text("I am a file")
    assert _predict(tmp_path, tiny_model_file, src) == 2
    assert "not a folder" in _stderr_line(capsys)


def test_error_bad_work_size(pairs_dir, tmp_path, capsys):
    code = main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(tmp_path / "m.safetensors"), "--init", "none", "--work-size", "big"])
    assert code == 2
    assert "--work-size" in _stderr_line(capsys)


def test_error_evaluate_without_pred(tmp_path, capsys):
    (tmp_path / "masks").mkdir()
    assert main(["evaluate", "--masks", str(tmp_path / "masks")]) == 2
    assert "--pred" in _stderr_line(capsys)


def test_errors_through_a_real_process(tmp_path, tiny_model_file):
    """The console entry point: exit status and a single stderr line, no traceback."""
    bad = tmp_path / "fake.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = subprocess.run(
        [sys.executable, "-m", "napari_nevseg", "predict", str(bad), str(tmp_path / "missing.png"),
         "--out", str(tmp_path / "out"), "--model", str(tiny_model_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nevseg:") and "missing.png" in lines[0]
    result = subprocess.run(
        [sys.executable, "-m", "napari_nevseg", "predict", str(bad), "--out", str(tmp_path / "out"),
         "--model", str(tiny_model_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("nevseg:") and "fake.png" in lines[0]


def test_train_interrupted_then_resumed_equals_an_uninterrupted_run(pairs_dir, tmp_path, capsys, monkeypatch):
    """Ctrl+C after epoch 2 leaves OUT.resume and a one-line hint; --resume finishes the run
    with the weights an uninterrupted run makes, and removes the checkpoint."""
    from napari_nevseg.core.checkpoint import load_model
    from napari_nevseg.core.training import steps

    def command(out, *extra):
        return ["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                "--out", str(out), "--init", "none", "--arch", "unet", "--width", "4", "--depth", "2",
                "--work-size", "48x32", "--epochs", "4", "--batch-size", "2", "--device", "cpu",
                "--checkpoint-every", "2", *extra]

    whole = tmp_path / "whole.safetensors"
    assert main(command(whole)) == 0
    assert not (tmp_path / "whole.safetensors.resume").exists()
    out = tmp_path / "cut.safetensors"
    real_step, calls = steps.train_step, []

    def interrupted_step(*args):
        calls.append(1)
        if len(calls) == 7:  # 2 steps per epoch: during epoch 4, after the checkpoint of epoch 2
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(steps, "train_step", interrupted_step)
    capsys.readouterr()
    assert main(command(out)) == 130
    line = _stderr_line(capsys)
    assert "--resume" in line and "cut.safetensors.resume" in line
    assert not out.exists() and (tmp_path / "cut.safetensors.resume").is_file()
    monkeypatch.setattr(steps, "train_step", real_step)
    assert main(command(out, "--resume")) == 0
    assert "resuming from" in capsys.readouterr().out
    assert not (tmp_path / "cut.safetensors.resume").exists()
    a, b = load_model(whole)[0].state_dict(), load_model(out)[0].state_dict()
    assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) <= 1e-6


def test_train_resume_without_checkpoint(pairs_dir, tmp_path, capsys):
    code = main(["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                 "--out", str(tmp_path / "m.safetensors"), "--init", "none", "--resume"])
    assert code == 2
    assert "no training checkpoint" in _stderr_line(capsys)


def test_train_a_click_model(pairs_dir, tmp_path, capsys, tiny_model_file):
    from napari_nevseg.core.session import ModelSession

    out = tmp_path / "click.safetensors"
    base = ["train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"), "--out", str(out),
            "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--clicks"]
    assert main([*base, "--init", "none", "--arch", "unet", "--width", "4", "--depth", "2", "--work-size", "48x32",
                 "--click-radius", "3", "--click-weight", "10", "--click-rounds", "1"]) == 0
    session = ModelSession.load(out, "cpu")
    assert session.supports_clicks and session.meta["clicks"]["radius"] == 3
    simulated = session.meta["training"]["config"]["clicks"]
    assert simulated["click_weight"] == 10 and simulated["max_iterations"] == 1
    capsys.readouterr()
    assert main([*base, "--init", str(tiny_model_file)]) == 2
    assert "--init none" in _stderr_line(capsys)
    assert main([*base[:-1], "--init", "none", "--click-weight", "10"]) == 2  # without --clicks it would do nothing
    assert "add --clicks" in _stderr_line(capsys)
