"""Core test fixtures: tiny synthetic images, tiny model files. Qt-free (widget fixtures live in
tests/widgets/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.click_model import CLICK_MODEL_FILE
from tests.synthetic import blob_picture

WORK_HW = (32, 48)


def model_metadata(width: int = 4, depth: int = 2, norm: str = "batch", **extra) -> dict:
    return {
        "arch": "unet",
        "arch_params": {"width": width, "depth": depth, "norm": norm},
        "work_size": list(WORK_HW),
        "normalization": {"mean": [0.6, 0.45, 0.4], "std": [0.25, 0.25, 0.25]},
        **extra,
    }


def _train_blob_model(seed: int = 0):
    """A small U-Net trained (plain loop, a few seconds) to find dark blobs: masks are non-trivial
    and confident, so tests comparing masks of the same picture in other formats mean something."""
    import torch

    from napari_nevseg.core.losses import bce_dice_loss
    from napari_nevseg.core.model import UNet

    torch.manual_seed(seed)
    pictures = [blob_picture(*WORK_HW, seed=1000 + i, grey=i % 4 == 0) for i in range(48)]
    x = torch.from_numpy(np.stack([p[0] for p in pictures])).permute(0, 3, 1, 2).float() / 255.0
    y = torch.from_numpy(np.stack([p[1] for p in pictures]))[:, None].float()
    meta = model_metadata(width=8, depth=2)
    mean = torch.tensor(meta["normalization"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(meta["normalization"]["std"]).view(1, 3, 1, 1)
    x = (x - mean) / std
    model = UNet(width=8, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(150):
        idx = torch.randperm(len(x), generator=gen)[:12]
        loss = bce_dice_loss(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, meta


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    """One torch thread: the machine is small and shared; tiny tensors gain nothing from more."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A random UNet(width=4, depth=2) model file at working size 32x48."""
    import torch

    from napari_nevseg.core.checkpoint import save_model
    from napari_nevseg.core.model import UNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(path, UNet(width=4, depth=2).eval(), model_metadata(version="tiny"))
    return path


@pytest.fixture(scope="session")
def blob_model_file(tmp_path_factory) -> Path:
    """A small UNet trained on synthetic dark-blob pictures (finds them with Dice > 0.9)."""
    from napari_nevseg.core.checkpoint import save_model

    model, meta = _train_blob_model()
    path = tmp_path_factory.mktemp("models") / "blob model.safetensors"
    save_model(path, model, {**meta, "version": "blob"})
    return path


@pytest.fixture(scope="session")
def blob_session(blob_model_file):
    from napari_nevseg.core.session import ModelSession

    return ModelSession.load(blob_model_file, "cpu")


@pytest.fixture(scope="session")
def click_model_file() -> Path:
    """The tiny click model (tests/data/click_blob.safetensors, see tests/click_model.py): a
    ResUNet at working size 48x64 that takes clicks, trained on blob pictures."""
    return CLICK_MODEL_FILE


@pytest.fixture(scope="session")
def click_session(click_model_file):
    from napari_nevseg.core.session import ModelSession

    return ModelSession.load(click_model_file, "cpu")


@pytest.fixture(scope="session")
def tiny_session(tiny_model_file):
    from napari_nevseg.core.session import ModelSession

    return ModelSession.load(tiny_model_file, "cpu")


@pytest.fixture(scope="session")
def model_meta():
    """``model_meta(width=4, depth=2, norm="batch", **extra) -> metadata dict`` (work size 32x48)."""
    return model_metadata


@pytest.fixture(scope="session")
def make_blob():
    """``make_blob(h, w, seed, grey=False) -> (rgb, mask)``."""
    return blob_picture


@pytest.fixture
def pairs_dir(tmp_path) -> Path:
    """``tmp/images`` and ``tmp/masks`` with 4 small generated pairs (PNG, 0/255 masks)."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(4):
        rgb, mask = blob_picture(40, 56, seed=i)
        Image.fromarray(rgb).save(images / f"img{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"img{i}.png")
    return tmp_path


@pytest.fixture
def project_dir(tmp_path) -> Path:
    """A project folder with 6 images in images/ and no masks."""
    images = tmp_path / "proj" / "images"
    images.mkdir(parents=True)
    for i in range(6):
        rgb, _ = blob_picture(30 + i, 44, seed=50 + i)
        Image.fromarray(rgb).save(images / f"case{i}.png")
    return tmp_path / "proj"
