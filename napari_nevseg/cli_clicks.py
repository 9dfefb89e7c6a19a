"""``nevseg evaluate --clicks N``: the click protocol (core/click_eval.py) printed as a table."""

from __future__ import annotations

import argparse
import json

from napari_nevseg.core.errors import NevsegError, NoPairsError

_ROWS = (
    ("NoC@85", "noc85", "{:.2f}"),
    ("NoC@90", "noc90", "{:.2f}"),
    ("failure rate (@90)", "failure_rate", "{:.1%}"),
    ("IoU automatic", "iou_auto", "{:.4f}"),
    ("IoU after 1 click", "iou_after_1", "{:.4f}"),
    ("IoU after 3 clicks", "iou_after_3", "{:.4f}"),
    ("IoU after 5 clicks", "iou_after_5", "{:.4f}"),
    ("ms per click", "ms_per_click", "{:.1f}"),
)


def _samples(pairs):
    from napari_nevseg.core.image_io import read_image, read_mask

    for pair in pairs:
        image = read_image(pair.image)
        yield pair.stem, image, read_mask(pair.mask, image.shape[:2])


def _table(summaries: dict[str, dict], max_clicks: int) -> list[str]:
    modes = list(summaries)
    lines = [f"{'':<22}" + "".join(f"{m:>10}" for m in modes)]
    for label, key, fmt in _ROWS:
        lines.append(f"{label:<22}" + "".join(f"{fmt.format(summaries[m][key]):>10}" for m in modes))
    first = summaries[modes[0]]["by_size"]
    for size in first:
        n = first[size]["n"]
        lines.append(f"lesion {size} ({n} images)")
        if n:
            for label, key, fmt in _ROWS[:3]:
                lines.append(f"  {label:<20}" + "".join(
                    f"{fmt.format(summaries[m]['by_size'][size][key]):>10}" for m in modes))
    return lines


def run_click_evaluate(args: argparse.Namespace) -> int:
    from napari_nevseg.core.click_eval import evaluate_clicks, summarise
    from napari_nevseg.core.data import find_pairs
    from napari_nevseg.core.session import ModelSession

    if args.images is None:
        raise NevsegError("--clicks needs --images (the images to correct) and --masks (the expert masks)")
    if args.clicks < 1:
        raise NevsegError(f"--clicks {args.clicks}: give at least 1 click")
    session = ModelSession.load(args.model or "default", args.device)
    modes = ["model"] if session.supports_clicks else []
    if args.brush:
        modes.append("brush")
    if not modes:
        raise NevsegError(f"model {session.version} takes no clicks; choose a click model with --model, "
                          "or add --brush to measure the brush alone")
    from napari_nevseg.cli_commands import subset_pairs

    pairs = subset_pairs(find_pairs(args.images, args.masks), session, args.subset)
    if not pairs:
        raise NoPairsError("nothing to evaluate")
    curves = evaluate_clicks(_samples(pairs), session, args.clicks, modes)
    summaries = {mode: summarise(c, args.clicks) for mode, c in curves.items()}
    if args.json:
        images = {m: {c.stem: list(c.ious) for c in cs} for m, cs in curves.items()}
        print(json.dumps({"max_clicks": args.clicks, "model": session.version, "summary": summaries,
                          "ious": images}, indent=1))
        return 0
    print(f"click protocol: {len(pairs)} images, at most {args.clicks} clicks, model {session.version}"
          f"{'' if session.supports_clicks else ' (takes no clicks: brush only)'}")
    print("\n".join(_table(summaries, args.clicks)))
    return 0
