"""Model files: a safe round trip, and every kind of bad file refused with a clear message."""

from __future__ import annotations

import json
import pathlib
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from napari_nevseg import __version__
from napari_nevseg.core.checkpoint import FORMAT, load_model, model_bytes, read_metadata, save_model
from napari_nevseg.core.errors import ModelFileError
from napari_nevseg.core.model import SegNet, UNet


class _Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5) if name.endswith("running_var") else t.uniform_(-1, 1)
    return model


def test_round_trip_keeps_weights_and_metadata(tmp_path, model_meta):
    model = _trained_like(UNet(width=4, depth=2))
    meta = model_meta(version="v3", metrics={"val_dice": 0.91}, training={"train_images": ["a", "b"]})
    path = save_model(tmp_path / "m.safetensors", model, meta)
    loaded, got = load_model(path)
    assert _states_equal(model, loaded)
    assert not loaded.training
    for key, value in meta.items():
        assert got[key] == value
    assert got["format"] == FORMAT
    assert got["package_version"] == __version__
    assert "created" in got and len(got["weights_sha256"]) == 64
    assert read_metadata(path) == got
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x))


def test_round_trip_segnet(tmp_path, model_meta):
    model = _trained_like(SegNet(channels=(4, 8), bottleneck=8, norm="group"))
    meta = {**model_meta(), "arch": "segnet", "arch_params": {"channels": [4, 8], "bottleneck": 8, "norm": "group"}}
    loaded, _ = load_model(save_model(tmp_path / "s.safetensors", model, meta))
    assert isinstance(loaded, SegNet) and _states_equal(model, loaded)


def test_save_is_atomic_and_overwrites(tmp_path, model_meta):
    path = tmp_path / "m.safetensors"
    save_model(path, UNet(width=4, depth=2), model_meta(version="a"))
    save_model(path, UNet(width=4, depth=2), model_meta(version="b"))
    assert read_metadata(path)["version"] == "b"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left


@pytest.mark.parametrize("kind", ["torch_save", "raw_pickle"])
def test_pickle_file_is_refused_without_running_it(tmp_path, kind):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": _Payload(marker)}
    if kind == "torch_save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    # the payload is live: unpickling a copy does run it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe)))
    assert probe.exists()
    for call in (load_model, read_metadata):
        with pytest.raises(ModelFileError, match="pickle.*could run code"):
            call(path)
    assert not marker.exists()


def test_protocol0_pickle_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "old.pth"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=0))
    with pytest.raises(ModelFileError, match="not a safetensors"):
        load_model(path)
    assert not marker.exists()


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 8, 40, "half_data", "minus_one"])
def test_truncated_file(tmp_path, keep, model_meta):
    good = model_bytes(UNet(width=4, depth=2), model_meta())
    (header_len,) = struct.unpack("<Q", good[:8])
    cut = {"half_data": 8 + header_len + (len(good) - 8 - header_len) // 2, "minus_one": len(good) - 1}.get(keep, keep)
    path = tmp_path / "cut.safetensors"
    path.write_bytes(good[:cut])
    with pytest.raises(ModelFileError, match=r"truncated|damaged|too short|empty|not a safetensors"):
        load_model(path)


def test_altered_weight_bytes(tmp_path, model_meta):
    good = bytearray(model_bytes(_trained_like(UNet(width=4, depth=2)), model_meta()))
    good[-10] ^= 0x01  # one bit of one weight: still a finite float
    path = tmp_path / "altered.safetensors"
    path.write_bytes(bytes(good))
    with pytest.raises(ModelFileError, match="damaged weights.*checksum"):
        load_model(path)


def test_nan_weights(tmp_path, model_meta):
    model = UNet(width=4, depth=2)
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    path = save_model(tmp_path / "nan.safetensors", model, model_meta())
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        load_model(path)


@pytest.mark.parametrize(
    "params",
    [
        {"width": 8, "depth": 2, "norm": "batch"},
        {"width": 4, "depth": 3, "norm": "batch"},
        {"width": 4, "depth": 2, "norm": "group"},  # GroupNorm has no running statistics
        {"width": 100_000, "depth": 4},  # absurd: must be refused before allocating anything
    ],
)
def test_arch_params_that_do_not_match_the_weights(tmp_path, params, model_meta):
    path = tmp_path / "mismatch.safetensors"
    path.write_bytes(model_bytes(UNet(width=4, depth=2), {**model_meta(), "arch_params": params}))
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        load_model(path)


def test_arch_params_that_cannot_be_built(tmp_path, model_meta):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(model_bytes(UNet(width=4, depth=2), {**model_meta(), "arch_params": {"colour": 3}}))
    with pytest.raises(ModelFileError, match="cannot build"):
        load_model(path)


def test_unknown_architecture(tmp_path, model_meta):
    path = tmp_path / "arch.safetensors"
    path.write_bytes(model_bytes(UNet(width=4, depth=2), {**model_meta(), "arch": "transunet"}))
    with pytest.raises(ModelFileError, match="'transunet'.*update napari-nevseg"):
        read_metadata(path)


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in UNet(width=4, depth=2).state_dict().items()}, str(path))
    with pytest.raises(ModelFileError, match="not a napari-nevseg model"):
        load_model(path)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "unreadable metadata"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"arch": "unet"}), "lacks arch_params, work_size, normalization"),
    ],
)
def test_broken_metadata(tmp_path, raw, message):
    path = tmp_path / "meta.safetensors"
    state = {k: v.contiguous() for k, v in UNet(width=4, depth=2).state_dict().items()}
    save_file(state, str(path), metadata={"nevseg": raw})
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"work_size": [32]}, "work_size"),
        ({"work_size": [0, 48]}, "work_size"),
        ({"work_size": "32x48"}, "work_size"),
        ({"normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.0, 0.2]}}, "normalization"),
        ({"normalization": {"mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]}}, "normalization"),
        ({"normalization": [0.5, 0.2]}, "normalization"),
        ({"arch_params": [4, 2]}, "arch_params"),
    ],
)
def test_invalid_metadata_fields(tmp_path, change, message, model_meta):
    path = tmp_path / "fields.safetensors"
    path.write_bytes(model_bytes(UNet(width=4, depth=2), {**model_meta(), **change}))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_garbage_and_text_files(tmp_path):
    text = tmp_path / "readme.safetensors"
    text.write_text("this is not a model at all, just some text")
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    for path in (text, empty):
        with pytest.raises(ModelFileError):
            load_model(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path)  # a folder


def test_error_messages_are_one_line(tmp_path, model_meta):
    path = tmp_path / "mismatch.safetensors"
    path.write_bytes(model_bytes(UNet(width=4, depth=2), {**model_meta(), "arch_params": {"width": 8, "depth": 2}}))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("low_bytes", [b"\x80", b"PK"])
def test_header_length_that_looks_like_a_pickle_signature_still_loads(tmp_path, low_bytes, model_meta):
    """A valid file whose 8-byte header length starts with 0x80 or 'PK' is not a pickle."""
    model = _trained_like(UNet(width=4, depth=2))
    target = int.from_bytes(low_bytes, "little")
    modulus = 256 ** len(low_bytes)
    pad = 0
    for _ in range(4):
        data = model_bytes(model, model_meta(pad="x" * pad))
        (header_len,) = struct.unpack("<Q", data[:8])
        if header_len % modulus == target:
            break
        pad += (target - header_len) % modulus
    assert data[: len(low_bytes)] == low_bytes
    path = tmp_path / "lucky.safetensors"
    path.write_bytes(data)
    loaded, meta = load_model(path)
    assert _states_equal(model, loaded) and len(meta["pad"]) == pad
