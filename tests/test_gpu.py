"""CUDA / MPS checks: the same masks as the CPU, and fine-tuning that gives its memory back.

Skipped where there is no GPU (``-m "not gpu"`` deselects them explicitly). Run on a GPU machine
with ``tools/gpu_check.sh``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


def _gpu() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


needs_gpu = pytest.mark.skipif(_gpu() is None, reason="no CUDA or MPS device here")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@needs_gpu
def test_gpu_masks_match_cpu(blob_model_file, make_blob):
    from napari_nevseg.core.metrics import dice
    from napari_nevseg.core.session import ModelSession

    cpu = ModelSession.load(blob_model_file, "cpu")
    gpu = ModelSession.load(blob_model_file, _gpu())
    assert gpu.device.type == _gpu()
    pictures = [make_blob(120 + 7 * i, 160 + 11 * i, seed=300 + i)[0] for i in range(6)]
    for rgb in pictures:
        a, b = cpu.predict(rgb, return_probability=True), gpu.predict(rgb, return_probability=True)
        assert b.mask.shape == a.mask.shape == rgb.shape[:2]
        assert dice(a.mask, b.mask) >= 0.99
        assert np.abs(a.probability - b.probability).mean() < 0.02
    many = list(gpu.predictor.predict_many(pictures, batch_size=4))
    for rgb, pred in zip(pictures, many, strict=True):
        assert dice(pred.mask, cpu.predict(rgb).mask) >= 0.99


@needs_gpu
def test_gpu_uses_mixed_precision_where_it_pays():
    from napari_nevseg.core.inference import Predictor
    from napari_nevseg.core.model import UNet

    meta = {"work_size": [32, 48], "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    predictor = Predictor(UNet(width=4, depth=2), meta, torch.device(_gpu()))
    if _gpu() == "cuda":
        assert predictor.amp_dtype in (torch.bfloat16, torch.float16)
        assert predictor.channels_last
    assert predictor.predict(np.zeros((50, 70, 3), np.uint8)).mask.shape == (50, 70)


def _finetune(model, meta, train_set, val_set, on_step=None):
    from napari_nevseg.core.training import TrainConfig, train

    config = TrainConfig(epochs=2, batch_size=4, lr=5e-4, freeze_bn=True, device="cuda", seed=0)
    gen = train(train_set, val_set, config, (model, meta))
    steps = []
    try:
        while True:
            steps.append(next(gen))
            if on_step:
                on_step(steps[-1])
    except StopIteration as stop:
        return stop.value, steps


@needs_cuda
def test_cuda_finetune_with_autocast_frees_memory(model_meta, make_blob):
    import gc

    from napari_nevseg.core.model import UNet
    from napari_nevseg.core.training import make_training_set

    torch.manual_seed(0)
    meta = model_meta(width=16, depth=4)  # about 2 M parameters: 8 MB of weights, 16 MB of AdamW state
    model = UNet(width=16, depth=4).eval()
    work_hw = tuple(meta["work_size"])
    samples = [(f"b{i}", *make_blob(64, 96, seed=400 + i)) for i in range(6)]
    train_set = make_training_set(samples[:4], work_hw)
    val_set = make_training_set(samples[4:], work_hw)
    _finetune(model, meta, train_set, val_set)  # warm-up: cuDNN / cuBLAS set themselves up once
    gc.collect()
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    during = []
    result, steps = _finetune(model, meta, train_set, val_set,
                              on_step=lambda _p: during.append(torch.cuda.memory_allocated()))
    assert len(steps) == 2 and all(np.isfinite(s.loss) for s in steps)
    assert max(during) - start > 8 * 1024 * 1024  # weights and optimizer state lived on the GPU
    assert result.metadata["training"]["device"] == "cuda"
    assert next(result.model.parameters()).device.type == "cpu"
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() - start < 2 * 1024 * 1024  # all of it given back


@needs_cuda
def test_cuda_out_of_memory_fallback_reports(blob_session, make_blob):
    """A batch that runs out of GPU memory is halved, and the CPU takes over at the end."""
    from napari_nevseg.core.session import ModelSession

    session = ModelSession(*blob_session.cpu_copy(), torch.device("cuda"), "oom-test")
    calls = {"n": 0}
    forward = session.predictor.forward

    def flaky(x):
        calls["n"] += 1
        if x.device.type == "cuda":
            raise torch.OutOfMemoryError("test")
        return forward(x)

    session.predictor.forward = flaky
    messages: list[str] = []
    images = [make_blob(40, 60, seed=i)[0] for i in range(2)]
    preds = list(session.predictor.predict_many(images, batch_size=2, on_fallback=messages.append))
    assert len(preds) == 2 and session.device.type == "cpu"
    assert any("at a time" in m for m in messages) and any("CPU" in m for m in messages)
