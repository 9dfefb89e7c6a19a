"""Sample data: four PH2 images with their expert masks (File > Open Sample > NevSeg).

The files live in ``sample_data/`` at the top of the repository and are packed into wheels as
``napari_nevseg/sample_data`` (see pyproject.toml), so both places are searched.
"""

from __future__ import annotations

from pathlib import Path

from napari_nevseg.core.image_io import read_image, read_mask

SAMPLES = ("IMD003", "IMD008", "IMD085", "IMD405")


def sample_dir() -> Path:
    """The folder holding ``images/`` and ``masks/`` of the samples."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sample_data", here.parent / "sample_data"):
        if (candidate / "images").is_dir():
            return candidate
    raise FileNotFoundError("napari-nevseg sample data is missing from this installation")


def load_sample(stem: str) -> list[tuple]:
    """Layer data for one sample: the image and its reference mask (Labels)."""
    folder = sample_dir()
    image = read_image(folder / "images" / f"{stem}.png")
    mask = read_mask(folder / "masks" / f"{stem}.png", image.shape[:2]).astype("uint8")
    source = "PH2 database (Mendonça et al., EMBC 2013), research and benchmarking use"
    return [
        (image, {"name": stem, "rgb": True, "metadata": {"source": source}}, "image"),
        (mask, {"name": f"{stem} reference", "opacity": 0.4, "metadata": {"source": source}}, "labels"),
    ]


def load_IMD003() -> list[tuple]:
    return load_sample("IMD003")


def load_IMD008() -> list[tuple]:
    return load_sample("IMD008")


def load_IMD085() -> list[tuple]:
    return load_sample("IMD085")


def load_IMD405() -> list[tuple]:
    return load_sample("IMD405")
