"""Batched augmentation for dermoscopy, on whatever device the batch lives on.

Geometry (one affine warp per image, image and mask alike): rotation by any angle and flips
(a lesion has no up or down), zoom 0.8-1.25x and a small shift; what comes in from outside is black, like the
dermoscope's vignette.
Colour: brightness, contrast, saturation, per-channel gain (white balance of another dermoscope)
and gamma. Optional dark hair-like strokes. Optional copy-paste (Ghiasi et al. 2021, "Simple
Copy-Paste"): the object of another image in the batch pasted over this one, so that a few
labelled images make many scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

__all__ = ["AugmentConfig", "augment_batch"]


#: the colour jitters of :class:`AugmentConfig`, each a spread around a factor of 1
_COLOUR_JITTERS = ("brightness", "contrast", "saturation", "channel_gain", "gamma")


@dataclass(frozen=True)
class AugmentConfig:
    rotate: bool = True
    flip: bool = True
    zoom: tuple[float, float] = (0.8, 1.25)
    shift: float = 0.08
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.25
    channel_gain: float = 0.08
    gamma: float = 0.2
    hairs: int = 0
    copy_paste: float = 0.0  # probability that an image gets another one's object pasted in

    def with_colour_strength(self, factor: float) -> AugmentConfig:
        """The same augmentation with every colour jitter (brightness, contrast, saturation,
        channel gain, gamma) ``factor`` times as wide; geometry unchanged."""
        widened = replace(self, **{name: getattr(self, name) * factor for name in _COLOUR_JITTERS})
        widest = max(getattr(widened, name) for name in _COLOUR_JITTERS)
        if factor < 0 or widest >= 1:
            # each jitter multiplies by 1 +- spread: a spread of 1 or more can zero or negate a
            # factor (a gamma of 0 or less turns black into infinity)
            raise ValueError(f"colour strength {factor} is out of range: every jitter must stay below 1, "
                             f"the widest would be {widest:.2f}")
        return widened


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * (high - low) + low).to(device)


def _affine(images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator):
    n, _, h, w = images.shape
    dev = images.device
    angle = _uniform(n, -math.pi, math.pi, gen, dev) if cfg.rotate else torch.zeros(n, device=dev)
    zoom = torch.exp(_uniform(n, math.log(cfg.zoom[0]), math.log(cfg.zoom[1]), gen, dev))
    flip = torch.where(_uniform(n, 0, 1, gen, dev) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n, device=dev)
    shift = _uniform(2 * n, -cfg.shift, cfg.shift, gen, dev).view(n, 2)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # rotation in pixel space, expressed in normalised coordinates of a W x H image
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin * h / w
    theta[:, 1, 0] = sin * w / h * flip
    theta[:, 1, 1] = cos
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return images, masks


def _colour(images: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n, dev = images.shape[0], images.device

    def factor(spread: float, shape=(n, 1, 1, 1)) -> torch.Tensor:
        count = math.prod(shape)
        return _uniform(count, 1 - spread, 1 + spread, gen, dev).view(shape)

    images = images * factor(cfg.brightness)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * factor(cfg.contrast) + mean
    grey = images.mean(dim=1, keepdim=True)
    images = (images - grey) * factor(cfg.saturation) + grey
    images = images * factor(cfg.channel_gain, (n, 3, 1, 1))
    images = images.clamp(0, 1) ** factor(cfg.gamma)
    return images


def _copy_paste(images: torch.Tensor, masks: torch.Tensor, prob: float, gen: torch.Generator):
    """With probability ``prob`` per image, paste the object of another image of the batch (at
    that image's own augmented position) over it; the mask becomes the union of both."""
    n = images.shape[0]
    if n < 2 or prob <= 0:
        return images, masks
    donors = ((torch.arange(n) + torch.randint(1, n, (n,), generator=gen)) % n).to(images.device)
    chosen = (torch.rand(n, generator=gen) < prob).to(images.device, images.dtype).view(n, 1, 1, 1)
    pasted = masks[donors] * chosen
    images = images * (1 - pasted) + images[donors] * pasted
    return images, torch.maximum(masks, pasted)


def _hairs(images: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = images.shape
    ys = torch.linspace(-1, 1, h, device=images.device).view(1, h, 1)
    xs = torch.linspace(-1, 1, w, device=images.device).view(1, 1, w)
    for _ in range(count):
        a = _uniform(n, -math.pi, math.pi, gen, images.device).view(n, 1, 1)
        c = _uniform(2 * n, -1, 1, gen, images.device).view(n, 2, 1, 1)
        dist = (xs - c[:, 0]) * torch.sin(a) - (ys - c[:, 1]) * torch.cos(a)
        line = (dist.abs() < 0.006).unsqueeze(1)
        images = torch.where(line, images * 0.25, images)
    return images


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment float images ``(N, 3, H, W)`` in [0, 1] and masks ``(N, 1, H, W)`` in [0, 1].

    ``gen`` is a CPU generator, so a seed gives the same augmentations on every device.
    """
    images, masks = _affine(images, masks, cfg, gen)
    if cfg.copy_paste:
        images, masks = _copy_paste(images, masks, cfg.copy_paste, gen)
    images = _colour(images, cfg, gen)
    if cfg.hairs:
        images = _hairs(images, cfg.hairs, gen)
    return images.clamp(0, 1), masks.clamp(0, 1)
