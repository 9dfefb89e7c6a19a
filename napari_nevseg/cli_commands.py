"""The work behind each ``nevseg`` sub-command (imported only when that command runs)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from napari_nevseg.core.errors import ModelFileError, NevsegError, NoPairsError


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise NevsegError(f"--work-size {text!r} must look like 256x192 (width x height)") from None
    if w < 16 or h < 16:
        raise NevsegError("--work-size must be at least 16x16")
    return h, w


def _arch_params(args: argparse.Namespace) -> dict:
    """Constructor arguments of the network ``nevseg train --arch ...`` builds from scratch."""
    if args.arch == "resunet":
        try:
            channels = [int(c) for c in args.channels.split(",")]
        except ValueError:
            raise NevsegError(f"--channels {args.channels!r} must look like 16,32,64,128,256") from None
        if len(channels) < 2 or min(channels) < 1:
            raise NevsegError("--channels needs at least two positive widths")
        return {"channels": channels, "norm": args.norm or "instance", "top": args.top}
    if args.arch == "unet":
        return {"width": args.width, "depth": args.depth, "norm": args.norm or "batch"}
    return {"norm": args.norm or "batch"}


class _Progress:
    """A bar counting images on stderr, drawn only where stderr is a terminal (in a log, the
    per-image lines on stdout are the progress)."""

    def __init__(self, total: int) -> None:
        self.total, self.count = total, 0
        self.live = total > 0 and sys.stderr.isatty()

    def say(self, line: str, err: bool = False) -> None:
        if self.live:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
        print(line, file=sys.stderr if err else sys.stdout, flush=self.live)

    def advance(self) -> None:
        self.count += 1
        if self.live:
            filled = 30 * self.count // self.total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.count}/{self.total} images")
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def _predict_settings(args: argparse.Namespace, model_path):
    from napari_nevseg.core.batch import RunSettings
    from napari_nevseg.core.postprocess import Cleanup

    cleanup = Cleanup.none() if args.no_cleanup else Cleanup()
    version = "default" if args.model == "default" else None
    return RunSettings.for_model(model_path, version, args.threshold, cleanup, args.precision, args.tta)


def _predict_locally(args: argparse.Namespace, todo, settings, model_path):
    """Results of predicting ``todo`` in this process, and where it ran."""
    import torch

    from napari_nevseg.core.pipeline import predict_files
    from napari_nevseg.core.session import ModelSession

    if args.threads:
        torch.set_num_threads(args.threads)
    session = ModelSession.load(model_path, args.device, version=settings.model_version)
    session.predictor.precision = settings.precision
    session.predictor.tta = settings.tta
    results = predict_files([src for src, _ in todo], args.out, session, settings.threshold, settings.cleanup,
                            args.probabilities, args.overlays, stems=[stem for _, stem in todo],
                            on_fallback=lambda msg: print(f"nevseg: {msg}", file=sys.stderr))
    return results, session.device.type


def _predict_on_dask(args: argparse.Namespace, todo, settings, model_path):
    from napari_nevseg.core.dask_predict import ModelPlugin, predict_on_dask

    plugin = ModelPlugin(model_path, settings.model_sha256, args.device, settings.precision, settings.tta,
                         args.threads or 1)
    chunks = predict_on_dask(todo, args.out, args.scheduler, plugin, threshold=settings.threshold,
                             cleanup=settings.cleanup, probabilities=args.probabilities, overlays=args.overlays,
                             chunk_size=args.chunk_size)
    return (result for chunk in chunks for result in chunk.results), f"Dask {args.scheduler}"


def run_predict(args: argparse.Namespace) -> int:
    from napari_nevseg.core.batch import FAILURES_NAME, log_failure, parse_shard, plan_run
    from napari_nevseg.core.pipeline import collect_inputs
    from napari_nevseg.core.session import resolve_model_path

    shard = parse_shard(args.shard) if args.shard else (0, 1)
    if args.threads is not None and args.threads < 1:
        raise NevsegError("--threads must be at least 1")
    if args.chunk_size < 1:
        raise NevsegError("--chunk-size must be at least 1")
    if args.scheduler:  # before anything is written: a missing Dask or a bad address says so at once
        from napari_nevseg.core.dask_predict import parse_scheduler

        parse_scheduler(args.scheduler)
    files = collect_inputs(args.inputs)
    model_path = resolve_model_path(args.model)
    settings = _predict_settings(args, model_path)
    extras = [suffix for suffix, on in (("_prob", args.probabilities), ("_overlay", args.overlays)) if on]
    plan = plan_run(files, args.out, settings, overwrite=args.overwrite, shard=shard, extras=extras)
    if not plan.todo:
        print(f"nothing to predict: all {plan.total} images have their masks in {args.out}")
        return 0
    if plan.done and not args.quiet:
        print(f"{plan.done} of {plan.total} images already have their masks in {args.out}; "
              f"predicting the other {len(plan.todo)}")
    started = time.perf_counter()
    run = _predict_on_dask if args.scheduler else _predict_locally
    results, where = run(args, plan.todo, settings, model_path)
    failures, progress = 0, _Progress(len(plan.todo))
    for result in results:
        if result.error:
            failures += 1
            log_failure(args.out, result.source, result.error)
            progress.say(f"nevseg: skipped: {result.error}", err=True)
        elif not args.quiet:
            progress.say(f"{result.source} -> {result.outputs[0]}  lesion {result.lesion_fraction:.1%}  "
                         f"uncertainty {result.uncertainty:.3f}")
        progress.advance()
    progress.close()
    seconds = time.perf_counter() - started
    done = len(plan.todo) - failures
    failed = f"; {failures} failed, listed in {args.out / FAILURES_NAME}" if failures else ""
    print(f"predicted {done} of {len(plan.todo)} images with model {settings.model_version} on {where} "
          f"in {seconds:.1f} s ({1000 * seconds / max(done, 1):.0f} ms per image); masks in {args.out}{failed}")
    return 0 if failures == 0 else 1


def _splits(stems, args, default_pool=None) -> tuple[list[str], list[str], list[str]]:
    """Held-out test stems (``--holdout-fraction``), then the validation images: ``--val-fraction``
    when given, else ``default_pool(n)`` of the ``n`` left (the fine-tune plan's pool), else 20%."""
    from napari_nevseg.core.data import read_strata, stratified_split

    strata = read_strata(args.strata) if args.strata else None
    rest, test = stratified_split(stems, args.holdout_fraction, args.seed, strata)
    if args.val_fraction is not None:
        fraction = args.val_fraction
    elif default_pool is not None:
        fraction = default_pool(len(rest)) / max(1, len(rest))
    else:
        fraction = 0.2
    train, val = stratified_split(rest, fraction, args.seed + 1, strata)
    return train, val, test


def _report_progress(gen, checkpoint_path, quiet: bool = False):
    """Print one line per epoch; on Ctrl+C, say how to continue from the last checkpoint."""
    try:
        while True:
            progress = next(gen)
            if progress.epoch_loss is not None and not quiet:
                val = f"  val Dice {progress.val_dice:.4f} (best {progress.best_val_dice:.4f})" if progress.val_dice is not None else ""
                print(f"epoch {progress.epoch}/{progress.epochs}  loss {progress.epoch_loss:.4f}{val}  "
                      f"{progress.elapsed_s:.0f} s, about {progress.remaining_s:.0f} s left", flush=True)
    except StopIteration as stop:
        return stop.value
    except KeyboardInterrupt:
        if checkpoint_path.exists():
            raise KeyboardInterrupt(f"the run's last checkpoint is {checkpoint_path}: "
                                    "run the same command with --resume to continue it") from None
        raise


def _click_training(args: argparse.Namespace, init):
    """``--clicks``: simulate clicks from scratch (a click model's fine-tune does anyway)."""
    tuned = {"--click-weight": args.click_weight, "--click-rounds": args.click_rounds}
    if not args.clicks:
        given = [flag for flag, value in tuned.items() if value is not None]
        if given:
            raise NevsegError(f"{' and '.join(given)} shape the click simulation of a model trained from scratch: "
                              "add --clicks (a click model's fine-tune simulates clicks with its own settings)")
        return None
    from napari_nevseg.core.clicks import ClickSettings
    from napari_nevseg.core.training import ClickTraining

    if init is not None and ClickSettings.from_meta(init[1]) is None:
        raise NevsegError("--clicks trains a click model from scratch: add --init none "
                          f"(the starting model {args.init} takes no clicks)")
    settings = {"click_weight": args.click_weight, "max_iterations": args.click_rounds}
    return ClickTraining(radius=args.click_radius, **{k: v for k, v in settings.items() if v is not None})


@dataclass(frozen=True)
class _TrainingData:
    train: Any
    val: Any
    test: list[str]
    shares: dict[str, float] | None = None


def _training_data(args: argparse.Namespace, work_hw, say=print) -> _TrainingData:
    """The pairs ``nevseg train`` learns from: --images/--masks split by fractions, or the
    default recipe's sources with their fixed splits (:mod:`napari_nevseg.core.sources`)."""
    from napari_nevseg.core.data import find_pairs, find_ph2_pairs
    from napari_nevseg.core.training import TrainingSet, load_training_set

    if args.recipe is None:
        if args.images is None:
            raise NevsegError("give --images (and --masks), or --recipe default --data DIR")
        pairs = find_pairs(args.images, args.masks) if args.masks else find_ph2_pairs(args.images)
        train_stems, val_stems, test_stems = _splits([p.stem for p in pairs], args)
        by_stem = {p.stem: p for p in pairs}
        say(f"loading {len(pairs)} pairs: {len(train_stems)} train, {len(val_stems)} validation, "
            f"{len(test_stems)} held out; working size {work_hw[1]}x{work_hw[0]}")
        train_set = load_training_set([by_stem[s] for s in train_stems], work_hw)
        val_set = load_training_set([by_stem[s] for s in val_stems], work_hw) if val_stems else None
        return _TrainingData(train_set, val_set, test_stems)
    from napari_nevseg.core.sources import default_sources

    if args.data is None or args.images is not None:
        raise NevsegError("--recipe default reads its images from --data DIR (holding ph2/ and isic2017/), not --images")
    if not 0.0 <= args.ph2_share < 1.0:
        raise NevsegError(f"--ph2-share must be in [0, 1), not {args.ph2_share}")
    splits = default_sources(args.data)
    for name, split in splits.items():
        say(f"{name}: {len(split.train)} train, {len(split.val)} validation, {len(split.test)} test (never trained on)")

    def load(role: str):
        return TrainingSet.concat({n: load_training_set(getattr(s, role), work_hw) for n, s in splits.items()})

    shares = {"ph2": args.ph2_share, "isic2017": 1.0 - args.ph2_share}
    return _TrainingData(load("train"), load("val"), [s for split in splits.values() for s in split.stems("test")], shares)


def subset_pairs(pairs: list, session, subset: str) -> list:
    """The pairs of one split recorded in the model file (``all``: every pair)."""
    if subset == "all":
        return pairs
    key = {"test": "test_images", "val": "val_images", "train": "train_images"}[subset]
    wanted = set(session.meta.get("training", {}).get(key) or [])
    if not wanted:
        raise ModelFileError(f"model {session.version} records no {subset} split")
    return [p for p in pairs if p.stem in wanted]


def run_train(args: argparse.Namespace) -> int:
    """Train and write one model file; under torchrun, every process trains its share of the
    same run and rank 0 alone prints and writes (``core/training/distributed.py``)."""
    from napari_nevseg.core.training.distributed import process_group

    with process_group(args.device) as ranks:
        return _train(args, ranks)


def _train(args: argparse.Namespace, ranks) -> int:
    import torch

    from napari_nevseg.core.augment import AugmentConfig
    from napari_nevseg.core.checkpoint import load_model, save_model
    from napari_nevseg.core.session import resolve_model_path
    from napari_nevseg.core.training import Checkpointing, TrainConfig, train
    from napari_nevseg.core.training.resume import checkpoint_path_for

    init = None if args.init == "none" else load_model(resolve_model_path(args.init), "cpu")
    if init is not None and args.recipe is None:
        from napari_nevseg.cli_finetune import run_finetune

        return run_finetune(args, init, ranks)
    work_hw = tuple(init[1]["work_size"]) if init else _parse_size(args.work_size)
    fine_tune = init is not None
    say = print if ranks.lead else _silent
    data = _training_data(args, work_hw, say)
    config = TrainConfig(
        arch=args.arch,
        arch_params=_arch_params(args),
        work_size=work_hw,
        epochs=60 if args.epochs is None else args.epochs,
        batch_size=8 if args.batch_size is None else args.batch_size,
        lr=args.lr if args.lr is not None else (5e-4 if fine_tune else 2e-3),
        seed=args.seed,
        max_minutes=args.max_minutes,
        patience=args.patience,
        freeze_bn=fine_tune,
        device=args.device,
        threads=args.threads,
        augment=AugmentConfig(hairs=args.hairs, rotate=not args.upright),
        clicks=_click_training(args, init),
        source_shares=data.shares,
        epoch_size=args.epoch_size if data.shares else None,
    )
    train_set, val_set, test_stems = data.train, data.val, data.test
    checkpoint = Checkpointing(checkpoint_path_for(args.out), args.checkpoint_every, args.resume)
    if args.resume:
        say(f"resuming from {checkpoint.path}")
    elif checkpoint.path.exists():
        say(f"nevseg: starting afresh: {checkpoint.path} will be overwritten (add --resume to continue it)",
            file=sys.stderr)
    result = _report_progress(train(train_set, val_set, config, init, checkpoint), checkpoint.path, not ranks.lead)
    if not ranks.lead:
        return 0
    meta = result.metadata
    meta["training"].update({
        "images_dir": str(args.images if args.recipe is None else args.data),
        "masks_dir": str(args.masks), "recipe": args.recipe,
        "test_images": test_stems, "strata": str(args.strata) if args.strata else None,
        "torch_version": torch.__version__,
        "command": "nevseg " + " ".join(sys.argv[2:]) if sys.argv and sys.argv[0].endswith("nevseg") else None,
    })
    meta.setdefault("version", args.out.stem)
    save_model(args.out, result.model, meta)
    checkpoint.path.unlink(missing_ok=True)
    print(f"wrote {args.out}: best epoch {result.best_epoch}, validation Dice "
          f"{result.val_dice_before if result.val_dice_before is not None else float('nan'):.4f} -> "
          f"{result.val_dice_best if result.val_dice_best is not None else float('nan'):.4f} "
          f"({result.stopped_by}, {result.seconds:.0f} s)")
    return 0


def _silent(*_args, **_kwargs) -> None:
    """``print`` for the ranks that do not speak."""


def _print_scores(per_image, groups, as_json: bool) -> None:
    from napari_nevseg.core.metrics import mean_scores

    summary = {"n": len(per_image), **mean_scores(per_image)}
    by_group = {g: {"n": len(v), **mean_scores(v)} for g, v in sorted(groups.items())}
    if as_json:
        print(json.dumps({"mean": summary, "groups": by_group,
                          "images": {k: vars(v) for k, v in per_image.items()}}, indent=1))
        return
    print(f"{'image':<20}{'dice':>8}{'jaccard':>9}{'thr-jac':>9}")
    for stem, s in per_image.items():
        print(f"{stem:<20}{s.dice:>8.4f}{s.jaccard:>9.4f}{s.thresholded_jaccard:>9.4f}")
    for name, row in [*by_group.items(), ("MEAN", summary)]:
        print(f"{name + ' (' + str(row['n']) + ')':<20}{row['dice']:>8.4f}{row['jaccard']:>9.4f}"
              f"{row['thresholded_jaccard']:>9.4f}")


def run_evaluate(args: argparse.Namespace) -> int:
    if args.clicks is not None:
        from napari_nevseg.cli_clicks import run_click_evaluate

        return run_click_evaluate(args)
    if args.brush:
        raise NevsegError("--brush is the baseline of the click protocol: give --clicks N too")
    from napari_nevseg.core.data import find_pairs, read_strata
    from napari_nevseg.core.image_io import read_image, read_mask
    from napari_nevseg.core.metrics import score

    strata = read_strata(args.strata) if args.strata else {}
    per_image = {}
    if args.model is not None:
        from napari_nevseg.core.postprocess import Cleanup
        from napari_nevseg.core.session import ModelSession

        if args.images is None:
            raise NevsegError("--model needs --images (the images to predict)")
        session = ModelSession.load(args.model, args.device)
        if args.tta:
            session.predictor.tta = args.tta
        pairs = subset_pairs(find_pairs(args.images, args.masks), session, args.subset)
        cleanup = Cleanup.none() if args.no_cleanup else Cleanup()
        for pair in pairs:
            image = read_image(pair.image)
            ref = read_mask(pair.mask, image.shape[:2])
            per_image[pair.stem] = score(session.predict(image, args.threshold, cleanup).mask, ref)
    else:
        if args.pred is None:
            raise NevsegError("give --pred DIR (predicted masks) or --model M --images DIR")
        pairs = find_pairs(args.pred, args.masks)
        for pair in pairs:
            ref = read_mask(pair.mask)
            per_image[pair.stem] = score(read_mask(pair.image, ref.shape), ref)
    if not per_image:
        raise NoPairsError("nothing to evaluate")
    groups = defaultdict(list)
    for stem, s in per_image.items():
        if stem in strata:
            groups[strata[stem]].append(s)
    _print_scores(per_image, groups, args.json)
    return 0
