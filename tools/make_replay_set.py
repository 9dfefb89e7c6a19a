"""Write the replay set shipped with the package: a few PH2 *training* images of the default
model, at its working size, that every fine-tune mixes in so the model keeps what it knew of
dermoscopy while it learns a new camera (``napari_nevseg/core/replay.py``).

    python tools/make_replay_set.py [--data ../shared/data] [--n 8]

The images are drawn from the default model's PH2 training split only, one diagnosis after the
other, with a fixed seed: none is in the PH2 validation or test splits, so no reported score
ever comes from an image that was replayed. The folder's README.md carries PH2's attribution.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
from PIL import Image

from napari_nevseg.core.checkpoint import read_metadata
from napari_nevseg.core.data import find_pairs, load_pair, read_strata, resize_mask, resize_rgb
from napari_nevseg.core.replay import REPLAY_DIR
from napari_nevseg.core.session import default_model_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository


def choose(train_stems: list[str], diagnosis: dict[str, str], n: int, seed: int) -> list[str]:
    """``n`` stems, taking the diagnoses in turn so each is represented."""
    groups: dict[str, list[str]] = {}
    for stem in sorted(train_stems):
        groups.setdefault(diagnosis.get(stem, "unknown"), []).append(stem)
    rng = random.Random(seed)
    for stems in groups.values():
        rng.shuffle(stems)
    chosen: list[str] = []
    while len(chosen) < n and any(groups.values()):
        for name in sorted(groups):
            if groups[name] and len(chosen) < n:
                chosen.append(groups[name].pop())
    return sorted(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    meta = read_metadata(default_model_path())
    train = [s for s in meta["training"]["train_images"] if s.startswith("IMD")]
    held = set(meta["training"].get("test_images") or []) | set(meta["training"].get("val_images") or [])
    strata = read_strata(args.data / "ph2" / "classes.csv")
    stems = choose([s for s in train if s not in held], strata, args.n, args.seed)
    h, w = meta["work_size"]
    pairs = {p.stem: p for p in find_pairs(args.data / "ph2" / "images", args.data / "ph2" / "masks")}
    for sub in ("images", "masks"):
        (REPLAY_DIR / sub).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        image, mask = load_pair(pairs[stem])
        Image.fromarray(resize_rgb(image, (h, w))).save(REPLAY_DIR / "images" / f"{stem}.png", optimize=True)
        small = (resize_mask(mask, (h, w)) >= 0.5).astype(np.uint8) * 255
        Image.fromarray(small).save(REPLAY_DIR / "masks" / f"{stem}.png", optimize=True)
        print(f"{stem}: {strata.get(stem)}")
    print(f"wrote {len(stems)} pairs at {w}x{h} to {REPLAY_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
