#!/usr/bin/env bash
# GPU check: the benchmark on CUDA and the core tests, on a bare GPU machine, in under 5 minutes.
#
#   bash tools/gpu_check.sh IMAGES_DIR [MASKS_DIR] [MODEL] [OUT_DIR]
#
# Needs only torch (with CUDA), numpy, scipy, scikit-image, pillow, safetensors and pytest; no
# napari, no MONAI, no internet, no install: the package runs from this checkout (PYTHONPATH=.).
# IMAGES_DIR: e.g. 40 PH2 images (copy them under 64 MiB into the checkout), MASKS_DIR their masks
# (for the fine-tune rows), MODEL 'default' or a .safetensors file. Results: OUT_DIR (default
# $OUT or gpu_check_out)/bench_cuda.json and the logs. Test files needing modules missing here
# (tifffile, hypothesis) are skipped with a note. If pytest itself is missing and WHEELS names a
# folder of wheels, pytest is installed from there (--no-index).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: bash tools/gpu_check.sh IMAGES_DIR [MASKS_DIR] [MODEL] [OUT_DIR]" >&2
  exit 2
fi
IMAGES=$1
MASKS=${2:-}
MODEL=${3:-default}
OUT_DIR=${4:-${OUT:-gpu_check_out}}
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu dry-runs this script on a machine without a GPU
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
mkdir -p "$OUT_DIR"
status=0

echo "== environment"
$PY tools/gpu_check_env.py | tee "$OUT_DIR/env.txt" || { echo "gpu_check: a core dependency is missing"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee -a "$OUT_DIR/env.txt"

echo "== benchmark on $DEVICE ($IMAGES)"
mask_args=()
[ -n "$MASKS" ] && mask_args=(--masks "$MASKS")
timeout 170 $PY -m napari_nevseg bench --device "$DEVICE" --images "$IMAGES" "${mask_args[@]}" --model "$MODEL" \
  --train-minutes 0 --json-out "$OUT_DIR/bench_$DEVICE.json" 2>&1 | tee "$OUT_DIR/bench_$DEVICE.txt"
rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] && { echo "gpu_check: benchmark failed (exit $rc)"; status=1; }

echo "== core tests (not slow, no widgets), GPU tests included"
if ! $PY -c "import pytest" 2>/dev/null; then
  if [ -n "${WHEELS:-}" ] && [ -d "$WHEELS" ]; then
    $PY -m pip install --quiet --no-index --find-links "$WHEELS" pytest || true
  fi
fi
if $PY -c "import pytest" 2>/dev/null; then
  mapfile -t ignores < <($PY tools/gpu_check_env.py --ignores)
  timeout 110 $PY -m pytest tests -m "not slow" --ignore=tests/widgets "${ignores[@]}" -x -q -p no:cacheprovider -rs \
    2>&1 | tee "$OUT_DIR/tests.txt"
  rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && { echo "gpu_check: tests failed (exit $rc)"; status=1; }
else
  echo "gpu_check: pytest is not installed here: core tests NOT run (set WHEELS=DIR with a pytest wheel)"
  status=1
fi
echo "== gpu_check done (status $status); results in $OUT_DIR"
exit $status
