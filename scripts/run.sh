#!/usr/bin/env bash
# The main job: set everything up, then open napari with the NevSeg widget docked and a sample
# image. Without a display, say so and predict the sample images with the command line instead,
# writing each mask and an outline overlay PNG to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh qt,test
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/python -m napari_nevseg.launch "$@"
fi
echo "run: no display found (DISPLAY is not set), so napari cannot open a window here."
echo "run: predicting the sample images with the command line instead:"
.venv/bin/nevseg predict sample_data/images --out out --overlays
echo "run: masks and outline overlays are in $(pwd)/out (open out/*_overlay.png to look)."
