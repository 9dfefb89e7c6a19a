"""The original PH2 layout (IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp + IMDxxx_lesion/...)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_nevseg.cli import main
from napari_nevseg.core.checkpoint import read_metadata
from napari_nevseg.core.data import find_ph2_pairs, load_pair
from napari_nevseg.core.errors import NoPairsError


def _ph2_tree(root, make_blob, n=4):
    for i in range(n):
        case = f"IMD{i:03d}"
        image, mask = make_blob(48, 64, seed=i)
        (root / case / f"{case}_Dermoscopic_Image").mkdir(parents=True)
        (root / case / f"{case}_lesion").mkdir()
        Image.fromarray(image).save(root / case / f"{case}_Dermoscopic_Image" / f"{case}.bmp")
        Image.fromarray(mask).convert("1").save(root / case / f"{case}_lesion" / f"{case}_lesion.bmp")
    (root / "README.txt").write_text("not a case")
    return root


def test_find_ph2_pairs_reads_bmp_and_one_bit_masks(tmp_path, make_blob):
    root = _ph2_tree(tmp_path / "PH2 Dataset images", make_blob)
    pairs = find_ph2_pairs(root)
    assert [p.stem for p in pairs] == ["IMD000", "IMD001", "IMD002", "IMD003"]
    image, mask = load_pair(pairs[0])
    expected_image, expected_mask = make_blob(48, 64, seed=0)
    assert np.array_equal(image, expected_image)
    assert np.array_equal(mask, expected_mask > 0)


def test_find_ph2_pairs_explains_an_empty_tree(tmp_path):
    with pytest.raises(NoPairsError, match="IMDxxx"):
        find_ph2_pairs(tmp_path)


def test_train_on_a_ph2_tree(tmp_path, make_blob, capsys):
    root = _ph2_tree(tmp_path / "ph2", make_blob)
    out = tmp_path / "m.safetensors"
    code = main(["train", "--images", str(root), "--out", str(out), "--init", "none", "--width", "4",
                 "--depth", "2", "--work-size", "64x48", "--epochs", "1", "--batch-size", "2", "--val-fraction", "0.25"])
    assert code == 0, capsys.readouterr().err
    meta = read_metadata(out)
    train, val = meta["training"]["train_images"], meta["training"]["val_images"]
    assert len(train) == 3 and len(val) == 1
    assert sorted(train + val) == ["IMD000", "IMD001", "IMD002", "IMD003"]
