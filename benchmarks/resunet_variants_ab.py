"""What the ResUNet's design choices cost on this CPU, one 256x192 pass, interleaved rounds.

    python benchmarks/resunet_variants_ab.py --threads 2 --rounds 3

Variants (random weights; speed does not depend on them):
  instancenorm, refine   InstanceNorm2d(affine=True), refined 8-channel full-resolution top
  groupnorm,    refine   the same normalisation computed by GroupNorm(C, C)
  groupnorm,    direct   ... and the top straight to the logit (the shipped model)

Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from napari_nevseg.core.model import ResUNet


def _with_instance_norm(model: nn.Module) -> nn.Module:
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.GroupNorm) and child.num_groups == child.num_channels:
                replacement = nn.InstanceNorm2d(child.num_channels, affine=True, eps=child.eps)
                replacement.load_state_dict(child.state_dict())
                setattr(module, name, replacement)
    return model


def _median_ms(model: nn.Module, x: torch.Tensor, bf16: bool, reps: int = 20) -> float:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(3):
            model(x)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    variants = {
        "instancenorm, refine": _with_instance_norm(ResUNet(top="refine")).eval(),
        "groupnorm, refine": ResUNet(top="refine").eval(),
        "groupnorm, direct": ResUNet(top="direct").eval(),
    }
    x = torch.randn(1, 3, 192, 256)
    results: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.rounds):
        for name, model in variants.items():
            for bf16 in (False, True):
                results.setdefault((name, bf16), []).append(_median_ms(model, x, bf16))
    base = {bf16: statistics.median(results[("instancenorm, refine", bf16)]) for bf16 in (False, True)}
    print(f"{'variant':22s} {'fp32 ms':>8s} {'ratio':>6s} {'bf16 ms':>8s} {'ratio':>6s}")
    for name in variants:
        fp32, bf16 = (statistics.median(results[(name, b)]) for b in (False, True))
        print(f"{name:22s} {fp32:8.2f} {base[False] / fp32:6.2f} {bf16:8.2f} {base[True] / bf16:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
