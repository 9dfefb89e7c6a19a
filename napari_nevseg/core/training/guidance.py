"""Simulated clicks while training a click model (RITM and DeepEdit recipes, re-implemented).

Per batch, every image draws its own scenario (all random numbers from the run's generator, a
fixed count per batch, so a run is reproducible and resumable):

- about ``empty_fraction`` of the images get no guidance at all (DeepEdit): the network stays
  a good automatic model;
- the others start from one of three previous masks: nothing (with 1 to ``max_initial_clicks``
  positive clicks inside the object: RITM's first clicks), the network's own automatic mask
  (``from_auto_fraction``: how the product is used, clicks correct the automatic mask) or the
  true mask with a random half-plane of it erased or of its surroundings added
  (``edited_fraction``: a prior with hand edits, whose errors are wide, so the network learns to
  overrule the previous mask where the image and a click say so); the last two get a first
  click on their deepest error;
- then up to ``max_iterations`` rounds in which the network, without gradients, predicts from
  the clicks so far, a click goes to its deepest error and its prediction becomes the previous
  mask (RITM's iterative training), so the network learns to correct its own mistakes;
- before all that, ``focus_fraction`` of the images are zoomed in on their object, as the click
  prediction does (a crop around the clicked object at working resolution).

``click_weight`` (0: off) adds a loss on the pixels under the click disks
(:func:`~napari_nevseg.core.losses.click_disk_loss`): a click the network overrules is what
makes an annotator click the same error again and again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from napari_nevseg.core.clicks import click_maps, next_click
from napari_nevseg.core.model import freeze_batchnorm

__all__ = ["ClickTraining", "focus_on_objects", "simulate_guidance", "empty_guidance"]


@dataclass(frozen=True)
class ClickTraining:
    """How clicks are simulated while training; ``radius`` is the disk's, in working pixels."""

    radius: float = 5.0
    empty_fraction: float = 0.5
    from_auto_fraction: float = 0.35
    edited_fraction: float = 0.35
    max_initial_clicks: int = 2
    max_iterations: int = 3
    focus_fraction: float = 0.3
    click_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("empty_fraction", "from_auto_fraction", "edited_fraction", "focus_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if self.from_auto_fraction + self.edited_fraction > 1.0:
            raise ValueError("from_auto_fraction + edited_fraction must be at most 1")
        if self.click_weight < 0:
            raise ValueError(f"click_weight must be >= 0, not {self.click_weight}")
        if self.radius <= 0 or self.max_initial_clicks < 1 or self.max_iterations < 0:
            raise ValueError("click radius must be > 0, max_initial_clicks >= 1, max_iterations >= 0")


def focus_on_objects(images: torch.Tensor, masks: torch.Tensor, chosen: torch.Tensor, gen: torch.Generator):
    """Zoom the ``chosen`` images (and masks) in on their object's bounding box, widened 1.3 to
    2.2 times, keeping the aspect ratio; images without an object are left as they are."""
    n, _, h, w = images.shape
    widen = torch.rand(n, generator=gen) * 0.9 + 1.3
    fg = masks[:, 0] > 0.5
    rows, cols = fg.any(dim=2), fg.any(dim=1)
    has = fg.flatten(1).any(dim=1).cpu() & chosen.cpu()
    if not has.any():
        return images, masks
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    for i in torch.nonzero(has).flatten().tolist():
        r = torch.nonzero(rows[i]).flatten()
        c = torch.nonzero(cols[i]).flatten()
        cy, cx = (r[0] + r[-1] + 1).item() / 2, (c[0] + c[-1] + 1).item() / 2
        scale = min(1.0, max((r[-1] - r[0] + 1).item() / h, (c[-1] - c[0] + 1).item() / w) * widen[i].item())
        theta[i, 0, 0] = theta[i, 1, 1] = scale
        theta[i, 0, 2] = min(max(2 * cx / w - 1, -1 + scale), 1 - scale)
        theta[i, 1, 2] = min(max(2 * cy / h - 1, -1 + scale), 1 - scale)
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return images, masks


def _random_inside(truth: torch.Tensor, count: torch.Tensor, gen: torch.Generator) -> list[list[tuple]]:
    """Up to ``count[i]`` random positive clicks inside each object, away from its border when
    it is wide enough (RITM samples its first clicks from the eroded mask)."""
    n, h, w = truth.shape
    scores = torch.rand(n, h * w, generator=gen).to(truth.device)
    eroded = -F.max_pool2d(-truth[:, None].float(), 5, stride=1, padding=2)[:, 0] > 0.5
    inner = torch.where(eroded.flatten(1).any(dim=1, keepdim=True), eroded.flatten(1), truth.flatten(1))
    picks = torch.topk(scores * inner, k=int(count.max()), dim=1).indices.cpu()
    inner = inner.cpu()
    return [[(int(p) // w, int(p) % w, 1.0) for p in picks[i, : int(count[i])] if inner[i, p]] for i in range(n)]


def _edited(truth: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The true masks with a random half-plane through the object erased (two times in three)
    or, with its surroundings up to a ninth of the image's side, added."""
    n, h, w = truth.shape
    angle = torch.rand(n, generator=gen) * 2 * torch.pi
    where = torch.rand(n, 2, generator=gen)
    erase = torch.rand(n, generator=gen) < 2 / 3
    dev = truth.device
    rows = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    # the line passes through a point of the object's bounding box
    fg = truth.flatten(1).any(dim=1)
    r_any, c_any = truth.any(dim=2).float(), truth.any(dim=1).float()
    r0 = torch.argmax(r_any, dim=1).float()
    r1 = h - 1 - torch.argmax(r_any.flip(1), dim=1).float()
    c0 = torch.argmax(c_any, dim=1).float()
    c1 = w - 1 - torch.argmax(c_any.flip(1), dim=1).float()
    py = (r0 + (r1 - r0) * where[:, 0].to(dev)).view(n, 1, 1)
    px = (c0 + (c1 - c0) * where[:, 1].to(dev)).view(n, 1, 1)
    a = angle.to(dev).view(n, 1, 1)
    half = (rows - py) * torch.sin(a) - (cols - px) * torch.cos(a) > 0
    k = max(3, (min(h, w) // 9) | 1)
    grown = F.max_pool2d(truth[:, None].float(), k, stride=1, padding=k // 2)[:, 0] > 0.5
    erased, added = truth & ~half, truth | (grown & half)
    edited = torch.where(erase.to(dev).view(n, 1, 1), erased, added)
    return torch.where(fg.view(n, 1, 1), edited, truth)


def _predict(model: nn.Module, x: torch.Tensor, points: list[list[tuple]], prev: torch.Tensor, radius: float):
    guidance = _guidance(points, prev, x.shape[-2:], radius, x.device)
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        return model(torch.cat([x, guidance], dim=1)).float() > 0


def _guidance(points, prev, hw, radius, device) -> torch.Tensor:
    k = max((len(p) for p in points), default=0)
    table = torch.zeros(len(points), k, 3)
    for i, p in enumerate(points):
        if p:
            table[i, : len(p)] = torch.tensor(p, dtype=torch.float32)
    return torch.cat([click_maps(table.to(device), tuple(hw), radius), prev], dim=1)


def simulate_guidance(
    model: nn.Module, x: torch.Tensor, masks: torch.Tensor, cfg: ClickTraining, gen: torch.Generator,
    freeze_bn: bool = False,
) -> torch.Tensor:
    """Guidance channels ``(N, 3, H, W)`` for a normalised batch ``x`` and its masks."""
    n = x.shape[0]
    guided = (torch.rand(n, generator=gen) >= cfg.empty_fraction).tolist()
    start = torch.rand(n, generator=gen)
    from_auto = (start < cfg.from_auto_fraction).tolist()
    edited = ((start >= cfg.from_auto_fraction) & (start < cfg.from_auto_fraction + cfg.edited_fraction)).tolist()
    initial = torch.randint(1, cfg.max_initial_clicks + 1, (n,), generator=gen)
    rounds = torch.randint(0, cfg.max_iterations + 1, (n,), generator=gen).tolist()
    truth = masks[:, 0] > 0.5
    points = [p if g else [] for p, g in zip(_random_inside(truth, initial, gen), guided, strict=True)]
    prev = torch.zeros_like(masks)
    if not any(guided):
        return _guidance(points, prev, x.shape[-2:], cfg.radius, x.device)
    truth_np = truth.cpu().numpy()
    edits = _edited(truth, gen)
    for i in range(n):
        if guided[i] and edited[i]:
            prev[i, 0] = edits[i].float()
            click = next_click(edits[i].cpu().numpy(), truth_np[i])
            points[i] = [] if click is None else [(click[0], click[1], 1.0 if click[2] else -1.0)]
    was_training = model.training
    model.eval()
    try:
        auto = [i for i in range(n) if guided[i] and from_auto[i]]
        if auto:
            pred = _predict(model, x[auto], [[] for _ in auto], prev[auto], cfg.radius)
            for j, i in enumerate(auto):
                prev[i] = pred[j].float()
                click = next_click(pred[j, 0].cpu().numpy(), truth_np[i])
                points[i] = [] if click is None else [(click[0], click[1], 1.0 if click[2] else -1.0)]
        for r in range(max(rounds)):
            active = [i for i in range(n) if guided[i] and rounds[i] > r]
            if not active:
                break
            pred = _predict(model, x[active], [points[i] for i in active], prev[active], cfg.radius)
            for j, i in enumerate(active):
                prev[i] = pred[j].float()
                click = next_click(pred[j, 0].cpu().numpy(), truth_np[i])
                if click is not None:
                    points[i].append((click[0], click[1], 1.0 if click[2] else -1.0))
    finally:
        model.train(was_training)
        if was_training and freeze_bn:
            freeze_batchnorm(model)
    return _guidance(points, prev, x.shape[-2:], cfg.radius, x.device)


def empty_guidance(x: torch.Tensor) -> torch.Tensor:
    """Automatic mode: all three guidance channels empty."""
    return torch.zeros(x.shape[0], 3, *x.shape[-2:], device=x.device, dtype=x.dtype)

