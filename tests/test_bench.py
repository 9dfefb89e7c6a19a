"""``nevseg bench`` smoke test (tiny model, two generated images) and the exactness of the
speed paths it measures. No timing assertions beyond "positive": the numbers are the bench's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.cli import main

SPEED_KEYS = (
    "file_to_file_ms",
    "in_process_ms",
    "network_ms",
    "postprocess_ms",
    "batch8_network_ips",
    "batch8_in_process_ips",
    "files_parallel_ips",
    "finetune_step_s",
)


@pytest.fixture
def two_pairs(tmp_path, make_blob):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(2):
        rgb, mask = make_blob(72, 96, seed=20 + i)
        Image.fromarray(rgb).save(images / f"IMD{i:03d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"IMD{i:03d}.png")
    return images, masks


def test_bench_writes_json_with_every_row(two_pairs, tiny_model_file, tmp_path, capsys):
    images, masks = two_pairs
    out = tmp_path / "bench.json"
    argv = ["bench", "--images", str(images), "--masks", str(masks), "--model", str(tiny_model_file),
            "--device", "cpu", "--train-minutes", "0", "--no-widget", "--json-out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "file -> mask file" in printed and "ours (nevseg)" in printed

    assert {"environment", "settings", "models", "pipeline", "startup", "skipped"} <= set(report)
    assert report["settings"]["timed_images"] == 2
    assert report["environment"]["device"] == "cpu"
    assert report["skipped"]["accuracy"] == "--train-minutes 0"
    for key in ("decode_ms", "encode_png_ms", "write_mask_png_ms"):
        assert report["pipeline"][key] > 0
    assert report["startup"]["import_s"] > 0
    assert report["startup"]["import_pulls_torch"] is False

    try:
        import monai  # noqa: F401

        expected = {"nevseg", "monai_unet", "monai_basicunet"}
    except ImportError:
        expected = {"nevseg"}
        assert "monai" in report["skipped"]
    assert set(report["models"]) == expected
    for name, row in report["models"].items():
        for key in SPEED_KEYS:
            assert row[key] > 0, (name, key)
        assert row["finetune10"]["seconds"] > 0 and row["finetune10"]["epochs"] >= 1
        assert row["peak_rss_mb_so_far"] > 0
        assert row["parameters"] > 0


def test_bench_goes_on_without_monai(two_pairs, tiny_model_file, tmp_path, monkeypatch):
    from napari_nevseg import bench

    monkeypatch.setattr(bench, "import_monai", lambda: (None, "MONAI is not importable (test); its columns are skipped"))
    images, _ = two_pairs
    out = tmp_path / "bench.json"
    argv = ["bench", "--images", str(images), "--model", str(tiny_model_file), "--device", "cpu",
            "--limit", "1", "--no-startup", "--json-out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"nevseg"}
    assert "not importable" in report["skipped"]["monai"]
    assert report["skipped"]["accuracy"] == "no --masks given"
    assert "finetune_step_s" not in report["models"]["nevseg"]  # no masks, no fine-tune


def test_inference_copy_matches_the_model(tiny_session, make_blob):
    """BatchNorm folding and channels-last change the speed, not the float32 answer."""
    import torch

    predictor = tiny_session.predictor
    rgb, _ = make_blob(40, 60, seed=4)
    x = predictor.batch([rgb])
    with torch.inference_mode():
        plain = predictor.model(x.contiguous())
    with torch.autocast("cpu", enabled=False):
        fast = predictor._net(x)
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-4)
    assert predictor.model.training is False
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.model.modules())  # the model itself is untouched
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor._net.modules())


def test_latencies_are_taken_in_turn_with_a_rotating_first_model():
    """Each model is timed on every image, next to the others, and none always goes first."""
    import torch

    from napari_nevseg.bench._measure import time_in_turn

    order: list[tuple[int, str]] = []
    calls = [lambda name, i=i: order.append((i, name)) for i in range(3)]
    times = time_in_turn(["a", "b", "c"], calls, torch.device("cpu"))
    assert order == [(0, "a"), (0, "b"), (0, "c"), (1, "b"), (1, "c"), (1, "a"), (2, "c"), (2, "a"), (2, "b")]
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for ts in times.values() for t in ts)


def test_bench_normalises_monai_networks_as_training_from_scratch_does(make_blob):
    """MONAI's networks are trained by the bench with statistics it computes itself: they must be
    the ones ``train`` gives a model it builds from scratch, or the comparison is not like for like."""
    from napari_nevseg.bench._accuracy import channel_stats
    from napari_nevseg.core.training import TrainConfig, make_training_set, train

    samples = [(f"b{i}", *make_blob(48, 64, seed=30 + i)) for i in range(3)]
    train_set = make_training_set(samples, (48, 64))
    config = TrainConfig(epochs=1, batch_size=3, device="cpu", work_size=(48, 64),
                         arch="unet", arch_params={"width": 4, "depth": 2})
    gen = train(train_set, None, config)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        normalization = stop.value.metadata["normalization"]
    mean, std = channel_stats(train_set)
    assert mean == pytest.approx(normalization["mean"]) and std == pytest.approx(normalization["std"])
    assert max(std) > 0.01 and len({round(m, 3) for m in mean}) > 1  # a real image set, not a constant
