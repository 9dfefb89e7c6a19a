"""Throughput of ``nevseg predict`` over a folder archive: one process, Dask ``local:2``, and
``--shard`` with two processes at once; the peak memory (RSS) of every process; and whether the
three runs wrote the same masks.

Reads the shared ISIC 2017 images in place (train + val: 2150 files) and writes the masks to a
temporary folder, removed afterwards. Timings are wall-clock from launching the command(s) to
the last exit (Python start, model loading and the Dask cluster included), so they are what a
user waits for; each run's own summary line (prediction loop only) is printed as well.

    PYTHONPATH=. .venv/bin/python benchmarks/predict_throughput.py [--limit N] [--precision auto]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from napari_nevseg.core.image_io import list_images

DATA = Path(os.environ.get("NEVSEG_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FOLDERS = [DATA / "isic2017" / "train" / "images", DATA / "isic2017" / "val" / "images"]


def _proc_tree(roots: set[int]) -> dict[int, tuple[int, str]]:
    """Every live process under ``roots`` (and the roots): pid -> (root pid, command line)."""
    parents, commands = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                commands[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = {}
    for pid in parents:
        up = pid
        while up not in roots and up > 1:
            up = parents.get(up, 1)
        if up in roots:
            tree[pid] = (up, commands.get(pid, ""))
    return tree


def _high_water_mark(pid: int) -> int:
    """The process's peak RSS so far, as the kernel counts it (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _watch(procs: list[subprocess.Popen], peaks: dict[int, tuple[str, int]], stop: threading.Event) -> None:
    """Every 0.5 s, the peak RSS (VmHWM) of each process in the commands' trees."""
    roots = {p.pid for p in procs}
    while not stop.is_set():
        for pid, (root, cmd) in _proc_tree(roots).items():
            label = "main" if pid == root else "worker" if "spawn_main" in cmd else "helper"
            peaks[pid] = (label, max(peaks.get(pid, (label, 0))[1], _high_water_mark(pid)))
        stop.wait(0.5)


def run(name: str, commands: list[list[str]], count: int) -> dict:
    peaks: dict[int, tuple[str, int]] = {}
    stop = threading.Event()
    started = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    watcher = threading.Thread(target=_watch, args=(procs, peaks, stop), daemon=True)
    watcher.start()
    outputs = [p.communicate() for p in procs]
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    for p, (_, err) in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            sys.exit(f"{name}: exit {p.returncode}\n{err[-2000:]}")
    summaries = [line for out, _ in outputs for line in out.splitlines() if line.startswith("predicted ")]
    by_role = {role: sorted((rss >> 20 for label, rss in peaks.values() if label == role), reverse=True)
               for role in ("main", "worker")}
    memory = "; ".join(f"{role} {', '.join(map(str, values))}" for role, values in by_role.items() if values)
    print(f"{name}: {count} images in {seconds:.1f} s wall = {count / seconds:.2f} images/s; "
          f"peak RSS per process, MiB: {memory}")
    for line in summaries:
        print(f"    {line}")
    return {"seconds": seconds, **by_role}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def compare(first: Path, other: Path) -> str:
    names = sorted(p.name for p in first.glob("*.png"))
    differ = [n for n in names if (first / n).read_bytes() != (other / n).read_bytes()]
    dices = [_dice(np.asarray(Image.open(first / n)) > 0, np.asarray(Image.open(other / n)) > 0) for n in differ]
    worst = f", lowest Dice {min(dices):.4f}" if dices else ""
    return f"{len(names) - len(differ)} of {len(names)} masks byte-identical{worst}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (a quick check)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--only", default="one,dask,shard", help="the runs, comma-separated (masks compared to the first)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nevseg-throughput-"))
    try:
        if args.limit:
            inputs = tmp / "inputs"  # links to the first N files, read in place
            inputs.mkdir()
            files = sorted(p for folder in FOLDERS for p in list_images(folder))[: args.limit]
            for f in files:
                (inputs / f.name).symlink_to(f)
            sources = [str(inputs)]
        else:
            sources = [str(f) for f in FOLDERS]
            files = [p for folder in FOLDERS for p in list_images(folder)]
        count = len(files)
        base = [sys.executable, "-m", "napari_nevseg", "predict", *sources, "--model", args.model,
                "--device", "cpu", "--precision", args.precision, "--quiet"]
        print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
              f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the start; {count} images, precision "
              f"{args.precision}")
        modes = {
            "one": ("one process (torch's default threads)", [[*base, "--out", str(tmp / "one")]]),
            "dask": ("Dask local:2 (1 torch thread per worker)",
                     [[*base, "--out", str(tmp / "dask"), "--scheduler", "local:2"]]),
            "shard": ("--shard 0/2 and 1/2 at once (1 torch thread each)",
                      [[*base, "--out", str(tmp / "shard"), "--shard", f"{i}/2", "--threads", "1"] for i in range(2)]),
        }
        for key in args.only.split(","):
            run(*modes[key], count)
        print(f"load average at the end {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        for key in args.only.split(",")[1:]:
            print(f"{key} vs {args.only.split(',')[0]}: {compare(tmp / args.only.split(',')[0], tmp / key)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
