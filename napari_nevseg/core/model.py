"""Segmentation networks, all outputting logits: a U-Net, a residual U-Net with a strided
encoder, and a small SegNet-style encoder-decoder.

Shape contract for every network here: input ``(N, C_in, H, W)`` float, output ``(N, 1, H, W)``
logits, for any H and W (inputs whose sides are not multiples of ``2**depth`` are padded inside
``forward`` and the output is cropped back).

Normalisation. :class:`ResUNet` (the default model's architecture) uses InstanceNorm: each
image is normalised on its own, which absorbs the exposure and white-balance differences between
dermoscopes, and nothing depends on the batch, so fine-tuning on 2-4 corrected images needs no
special care. On the PH2 validation split it beat BatchNorm in the same network
(docs/experiments.md). :class:`UNet` and :class:`SegNet` default to BatchNorm, the fastest on the
CPU (it folds into the convolution at inference); few-shot fine-tuning keeps its running
statistics frozen (:func:`freeze_batchnorm`). GroupNorm is available everywhere.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "ResUNet", "SegNet", "ARCHITECTURES", "build_model", "freeze_batchnorm", "count_parameters"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "instance":
        # Instance normalisation with a per-channel affine, computed by GroupNorm with one group
        # per channel: the same function and parameter names as InstanceNorm2d(affine=True), but
        # without its repeat-and-batch-norm detour (faster on the CPU: docs/benchmarks.md)
        return nn.GroupNorm(channels, channels)
    raise ValueError(f"unknown norm {kind!r}: use 'batch', 'group' or 'instance'")


class ConvBlock(nn.Sequential):
    """``repeats`` x (3x3 conv, norm, ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, norm: str, repeats: int = 2) -> None:
        layers: list[nn.Module] = []
        for i in range(repeats):
            layers += [
                nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1, bias=False),
                _norm(norm, out_ch),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class Up(nn.Module):
    """Upsample x2, concatenate the skip connection, ConvBlock."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, norm: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.block = ConvBlock(out_ch + skip_ch, out_ch, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


def _pad_to_multiple(
    x: torch.Tensor, multiple: int, minimum: int = 1
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad the bottom and right so both sides are multiples of ``multiple`` and at
    least ``minimum``; also returns the original size for cropping back."""
    h, w = x.shape[-2:]
    pad_h = -(-max(h, minimum) // multiple) * multiple - h
    pad_w = -(-max(w, minimum) // multiple) * multiple - w
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, (h, w)


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with bilinear upsampling and configurable size.

    ``width`` channels at full resolution, doubling at each of ``depth`` downsamplings.
    """

    def __init__(
        self, in_channels: int = 3, width: int = 16, depth: int = 4, norm: str = "batch"
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError("width and depth must be at least 1")
        self.depth = depth
        chans = [width * 2**i for i in range(depth + 1)]
        self.stem = ConvBlock(in_channels, chans[0], norm)
        self.downs = nn.ModuleList(ConvBlock(chans[i], chans[i + 1], norm) for i in range(depth))
        self.ups = nn.ModuleList(
            Up(chans[i + 1], chans[i], chans[i], norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(chans[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = _pad_to_multiple(x, 2**self.depth)
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[..., :h, :w]


class ResidualUnit(nn.Module):
    """``convs`` x (3x3 conv, norm, PReLU), the first one strided, plus a shortcut from the input.

    The shortcut is the identity when shapes match, else a convolution with the same stride
    (3x3 when strided, so it sees the same field as the body, 1x1 otherwise).
    """

    def __init__(self, in_ch: int, out_ch: int, norm: str, stride: int = 1, convs: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [
                nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, stride=stride if i == 0 else 1,
                          padding=1, bias=False),
                _norm(norm, out_ch),
                nn.PReLU(out_ch),
            ]
        self.body = nn.Sequential(*layers)
        if stride == 1 and in_ch == out_ch:
            self.shortcut: nn.Module = nn.Identity()
        else:
            k = 3 if stride > 1 else 1
            self.shortcut = nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class UpStage(nn.Module):
    """Concatenate the skip, 2x transposed convolution (norm, PReLU), one residual conv."""

    def __init__(self, in_ch: int, out_ch: int, norm: str) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=False),
            _norm(norm, out_ch),
            nn.PReLU(out_ch),
        )
        self.refine = ResidualUnit(out_ch, out_ch, norm, convs=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.refine(self.up(torch.cat([skip, x], dim=1)))


class LogitUp(nn.Module):
    """Concatenate the skip, then one 2x transposed convolution straight to the logit."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.up(torch.cat([skip, x], dim=1))


class ResUNet(nn.Module):
    """U-Net with a strided residual encoder (after Kerfoot et al., 2018, "Left-ventricle
    quantification using residual U-Net").

    The first stage already downsamples, so no feature map is computed at full resolution except
    (with ``top="refine"``) the thin one before the head: four to five times cheaper than
    :class:`UNet` at the same width, which on a CPU buys more epochs and larger working sizes
    for the same time. ``channels[i]`` is the width after the ``i``-th stride-2 stage; the last
    entry is the bottleneck (stride 1).

    ``top`` is how the last stage returns to full resolution: ``"refine"`` (transposed convolution
    to ``head_channels``, a residual 3x3 convolution, a 1x1 head) or ``"direct"`` (one transposed
    convolution straight to the logit, as MONAI's UNet ends: no feature map at full resolution at
    all, so faster on the CPU; ``head_channels`` is not used). ``"direct"`` is the default, as in
    the shipped model; files written before ``top`` existed load as ``"refine"``
    (:func:`build_model`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: tuple[int, ...] = (16, 32, 64, 128, 256),
        norm: str = "instance",
        head_channels: int = 8,
        top: str = "direct",
    ) -> None:
        super().__init__()
        if len(channels) < 2 or min(channels) < 1:
            raise ValueError("channels needs at least two positive entries")
        if head_channels < 1:
            raise ValueError("head_channels must be at least 1")
        if top not in ("refine", "direct"):
            raise ValueError(f"unknown top {top!r}: use 'refine' or 'direct'")
        self.depth = len(channels) - 1
        widths = [in_channels, *channels]
        self.encoder = nn.ModuleList(
            ResidualUnit(widths[i], widths[i + 1], norm, stride=2) for i in range(self.depth)
        )
        self.bottleneck = ResidualUnit(channels[-2], channels[-1], norm)
        # Going up, the stage at level i joins the encoder output there (channels[i]) with what
        # comes from below (the bottleneck, or the stage beneath, which made channels[i]) and
        # makes the width of the level above (the head's at the top).
        joined = [channels[i] + (channels[-1] if i == self.depth - 1 else channels[i]) for i in range(self.depth)]
        stages: list[nn.Module] = [UpStage(joined[i], channels[i - 1], norm) for i in reversed(range(1, self.depth))]
        if top == "refine":
            stages.append(UpStage(joined[0], head_channels, norm))
            self.head: nn.Module = nn.Conv2d(head_channels, 1, 1)
        else:
            stages.append(LogitUp(joined[0]))
            self.head = nn.Identity()
        self.decoder = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # instance statistics need more than one pixel per map at the bottleneck
        x, (h, w) = _pad_to_multiple(x, 2**self.depth, minimum=2 ** (self.depth + 1))
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = self.bottleneck(x)
        for stage in self.decoder:
            x = stage(x, skips.pop())
        return self.head(x)[..., :h, :w]


class SegNet(nn.Module):
    """The small encoder-decoder of the PH2 lesson: no skip connections.

    Encoder: ``len(channels)`` stages of (3x3 conv, norm, ReLU, 2x2 max-pool); a bottleneck of
    ``bottleneck`` channels; a mirrored decoder of (2x upsample, 3x3 conv, norm, ReLU); 1x1 head.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        bottleneck: int = 256,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.depth = len(channels)
        enc, prev = [], in_channels
        for ch in channels:
            enc.append(nn.Sequential(ConvBlock(prev, ch, norm, repeats=1), nn.MaxPool2d(2)))
            prev = ch
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = ConvBlock(prev, bottleneck, norm, repeats=1)
        dec, prev = [], bottleneck
        for ch in reversed(channels):
            dec.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), ConvBlock(prev, ch, norm, repeats=1)))
            prev = ch
        self.decoder = nn.Sequential(*dec)
        self.head = nn.Conv2d(prev, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = _pad_to_multiple(x, 2**self.depth)
        return self.head(self.decoder(self.bottleneck(self.encoder(x))))[..., :h, :w]


ARCHITECTURES: dict[str, type[nn.Module]] = {"unet": UNet, "resunet": ResUNet, "segnet": SegNet}


def build_model(arch: str, params: dict[str, Any] | None = None) -> nn.Module:
    """Build a network by name; ``params`` are its constructor arguments (JSON-friendly)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    kwargs = dict(params or {})
    if arch == "resunet":
        # model files written before ``top`` was a parameter all have the refined top
        kwargs.setdefault("top", "refine")
    if "channels" in kwargs:
        kwargs["channels"] = tuple(kwargs["channels"])
    return ARCHITECTURES[arch](**kwargs)


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode so few-shot batches do not overwrite its statistics."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
