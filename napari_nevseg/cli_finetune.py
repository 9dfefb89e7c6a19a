"""``nevseg train --init MODEL --images DIR --masks DIR``: fine-tune with the plan the data
chooses (``core.training.plan``), through ``core.adapt.finetune``, the code the widget's
*Fine-tune* runs. Flags such as ``--epochs`` or ``--lr`` override the plan by hand."""

from __future__ import annotations

import argparse
import sys

from napari_nevseg.core.errors import NevsegError

#: flags that change the plan when given (their parser default is None), by TrainConfig field
_OVERRIDES = ("epochs", "lr", "patience", "batch_size", "max_minutes")


def _plan(args: argparse.Namespace, n_train: int, n_val: int, new: int):
    from napari_nevseg.core.training.plan import plan_finetune, with_overrides

    plan = plan_finetune(n_train + n_val, n_new=new, pool=n_val, upright=args.upright, device=args.device,
                         threads=args.threads, seed=args.seed)
    return with_overrides(plan, **{name: getattr(args, name) for name in _OVERRIDES if getattr(args, name) is not None})


def _outcome(result, plan) -> str:
    """The run's result in words, as the widget says it."""
    from napari_nevseg.core.training.plan import POOL_FROM

    before, after = result.val_dice_before, result.val_dice_best
    if not plan.validated:
        return (f"trained on all {plan.n_images} images ({result.seconds:.0f} s): no validation pool below "
                f"{POOL_FROM} images, so the model is untested yet; score it on images it has not seen "
                "(nevseg evaluate)")
    if result.best_epoch == 0:
        return (f"no epoch beat the starting model on the {plan.pool} validation images (Dice {before:.3f}): "
                "the file holds the starting weights")
    if after < before:
        return (f"the result did not beat the starting model on the {plan.pool} validation images (Dice "
                f"{before:.3f} -> {after:.3f}): keep using the starting model")
    return (f"Dice {before:.3f} -> {after:.3f} on the {plan.pool} validation images "
            f"(best epoch {result.best_epoch}, {result.seconds:.0f} s)")


def run_finetune(args: argparse.Namespace, init, ranks) -> int:
    """Fine-tune ``init = (model, metadata)`` on --images/--masks and write ``args.out``."""
    import torch

    from napari_nevseg.cli_commands import _report_progress, _splits
    from napari_nevseg.core.adapt import finetune
    from napari_nevseg.core.checkpoint import save_model
    from napari_nevseg.core.data import find_pairs, find_ph2_pairs, load_pair
    from napari_nevseg.core.training import Checkpointing
    from napari_nevseg.core.training.plan import count_new, pool_size
    from napari_nevseg.core.training.resume import checkpoint_path_for

    if args.images is None:
        raise NevsegError("give --images (and --masks) to fine-tune on")
    if args.clicks:
        raise NevsegError("--clicks trains a click model from scratch (--init none); a click model's "
                          "fine-tune keeps its clicks anyway")
    pairs = find_pairs(args.images, args.masks) if args.masks else find_ph2_pairs(args.images)
    by_stem = {p.stem: p for p in pairs}
    train_stems, val_stems, test_stems = _splits(list(by_stem), args, default_pool=pool_size)
    plan = _plan(args, len(train_stems), len(val_stems), count_new(init[1], by_stem))
    say = print if ranks.lead else (lambda *a, **k: None)
    say(f"fine-tuning on {len(train_stems)} images, validating on {len(val_stems)}, {len(test_stems)} held out")
    for reason in plan.reasons:
        say(f"  {reason}")
    train_samples = [(s, *load_pair(by_stem[s])) for s in train_stems]
    val_samples = [(s, *load_pair(by_stem[s])) for s in val_stems]
    checkpoint = Checkpointing(checkpoint_path_for(args.out), args.checkpoint_every, args.resume)
    gen = finetune(init, train_samples, val_samples, plan, checkpoint)
    result = _report_progress(gen, checkpoint.path, not ranks.lead)
    if not ranks.lead:
        return 0
    meta = result.metadata
    meta["training"].update({
        "images_dir": str(args.images), "masks_dir": str(args.masks), "test_images": test_stems,
        "strata": str(args.strata) if args.strata else None, "torch_version": torch.__version__,
        "command": "nevseg " + " ".join(sys.argv[2:]) if sys.argv and sys.argv[0].endswith("nevseg") else None,
    })
    meta.setdefault("version", args.out.stem)
    save_model(args.out, result.model, meta)
    checkpoint.path.unlink(missing_ok=True)
    print(f"wrote {args.out}: {_outcome(result, plan)}")
    return 0
