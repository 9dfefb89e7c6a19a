"""The replay set: a few dermoscopy images shipped with the package that every fine-tune mixes
in, so that a model learning a new camera keeps what it knew (rehearsal against catastrophic
forgetting; the measurements that chose it are in docs/experiments.md).

The images are PH2 *training* images of the default model at its working size
(``tools/make_replay_set.py`` wrote them; ``models/replay/README.md`` holds their attribution).
None is in a validation or test split, so no reported score comes from an image replayed.
"""

from __future__ import annotations

from pathlib import Path

from napari_nevseg.core.data import find_pairs, load_pair

__all__ = ["REPLAY_DIR", "REPLAY_SOURCE", "replay_samples"]

REPLAY_DIR = Path(__file__).resolve().parents[1] / "models" / "replay"
#: the source name the replayed images carry in a training set (``TrainingSet.sources``)
REPLAY_SOURCE = "replay"


def replay_samples(folder: Path = REPLAY_DIR) -> list[tuple[str, object, object]]:
    """``(stem, image, mask)`` of every shipped replay pair; empty if the folder is missing
    (an installation without it fine-tunes without replay rather than failing)."""
    if not (folder / "images").is_dir():
        return []
    return [(p.stem, *load_pair(p)) for p in find_pairs(folder / "images", folder / "masks")]
