"""The benchmark results as a plain-text table."""

from __future__ import annotations

from typing import Any

from napari_nevseg.bench._common import (
    LABELS,
)

_ROWS = [
    ("file_to_file_ms", "file -> mask file, ms/image", "{:.1f}"),
    ("in_process_ms", "RGB array -> full-res mask, ms/image", "{:.1f}"),
    ("network_ms", "network alone at working size, ms", "{:.1f}"),
    ("postprocess_ms", "upsample + threshold + clean-up, ms", "{:.1f}"),
    ("batch8_network_ips", "network at batch 8, images/s", "{:.0f}"),
    ("batch8_in_process_ips", "predict_many batch 8, images/s", "{:.0f}"),
    ("files_parallel_ips", "files -> files, parallel decode, images/s", "{:.0f}"),
    ("finetune_step_s", "one fine-tune step (batch 4), s", "{:.2f}"),
    ("finetune10.seconds", "fine-tune 10 images to early stop, s", "{:.1f}"),
    ("finetune10.epochs", "  epochs run", "{}"),
    ("finetune10.val_dice_best", "  validation Dice (working size)", "{:.3f}"),
    ("peak_rss_mb_so_far", "peak RSS of the process so far, MiB", "{:.0f}"),
    ("cuda_max_allocated_mb", "CUDA max allocated, MiB", "{:.0f}"),
    ("cuda_max_reserved_mb", "CUDA max reserved, MiB", "{:.0f}"),
    ("parameters", "parameters", "{:,}"),
    ("precision", "network precision", "{}"),
]


def _get(row: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(row, dict) or part not in row:
            return None
        row = row[part]
    return row


def format_report(report: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    env = report["environment"]
    names = list(report["models"])
    lines = [
        f"nevseg bench: {env['device']} ({env.get('gpu') or env.get('cpu')}), torch {env['torch']}, "
        f"{env['torch_threads']} threads, MONAI {env.get('monai') or 'not used'}; "
        f"{report['settings']['timed_images']} images timed (median per image, after warm-up)",
    ]
    width = 44
    lines.append(f"{'':<{width}}" + "".join(f"{report['models'][n]['label']:>18}" for n in names))
    for key, label, fmt in _ROWS:
        values = [_get(report["models"][n], key) for n in names]
        if all(v is None for v in values):
            continue
        cells = "".join(f"{(fmt.format(v) if v is not None else 'n/a'):>18}" for v in values)
        lines.append(f"{label:<{width}}{cells}")
    pipe = report.get("pipeline") or {}
    if pipe:
        lines.append(f"shared by all: PNG decode {pipe['decode_ms']:.1f} ms, mask PNG encode {pipe['encode_png_ms']:.1f} ms, "
                     f"atomic write (fsync) {pipe['write_mask_png_ms']:.1f} ms")
    start = report.get("startup")
    if start:
        widget = (f"{start['widget_open_s']:.2f} s (viewer {start.get('viewer_s', 0):.2f} s before it; model ready "
                  f"{start['model_ready_s']:.2f} s)" if start.get("widget_open_s") is not None and start.get("model_ready_s") is not None
                  else f"{start['widget_open_s']:.2f} s" if start.get("widget_open_s") is not None
                  else start.get("widget_note") or "n/a")
        lines.append(f"import napari_nevseg: {1000 * start['import_s']:.0f} ms (imports torch: {start['import_pulls_torch']}; "
                     f"Python start included {1000 * start['python_start_and_import_s']:.0f} ms); "
                     f"open the NevSeg widget: {widget}")
    if "model_test_dice" in report:
        t = report["model_test_dice"]
        lines.append(f"our model on its {t['images']} held-out images: mean Dice {t['dice']:.4f} (full resolution, clean-up on)")
    acc = report.get("accuracy")
    if acc:
        split = acc["split"]
        lines.append(f"accuracy at equal cost: each trained from scratch for at most {acc['budget_minutes_per_model']:g} min "
                     f"on {env['device']} ({split['train']} train / {split['val']} val / {split['test']} test, seed {split['seed']})")
        lines.append(f"{'':<{width}}" + "".join(f"{LABELS.get(n, n):>18}" for n in acc["models"]))
        for key, label, fmt in [("minutes", "minutes used", "{:.1f}"), ("epochs", "epochs", "{}"),
                                ("val_dice", "validation Dice (full res)", "{:.4f}"),
                                ("test_dice", "held-out Dice (full res)", "{:.4f}")]:
            cells = "".join(f"{(fmt.format(m[key]) if m.get(key) is not None else 'n/a'):>18}" for m in acc["models"].values())
            lines.append(f"{label:<{width}}{cells}")
    for what, why in report.get("skipped", {}).items():
        lines.append(f"skipped {what}: {why}")
    return "\n".join(lines)
