"""Segmentation networks: a U-Net and a small SegNet-style encoder-decoder, both output logits.

Shape contract for every network here: input ``(N, C_in, H, W)`` float, output ``(N, 1, H, W)``
logits, for any H and W (inputs whose sides are not multiples of ``2**depth`` are padded inside
``forward`` and the output is cropped back).

Normalisation: BatchNorm by default. It is the fastest on the CPU (it folds into the convolution
at inference) and trains well at batch 8; few-shot fine-tuning keeps its running statistics
frozen (:func:`freeze_batchnorm`), which is what makes batches of 2-4 images safe. GroupNorm is
available (``norm="group"``) for training from scratch with tiny batches.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "SegNet", "ARCHITECTURES", "build_model", "freeze_batchnorm", "count_parameters"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"unknown norm {kind!r}: use 'batch' or 'group'")


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


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
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


ARCHITECTURES: dict[str, type[nn.Module]] = {"unet": UNet, "segnet": SegNet}


def build_model(arch: str, params: dict[str, Any] | None = None) -> nn.Module:
    """Build a network by name; ``params`` are its constructor arguments (JSON-friendly)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    kwargs = dict(params or {})
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
