#!/usr/bin/env bash
# Set up everything napari-nevseg needs on a fresh Debian machine with Python 3.11:
# the system libraries napari needs without a display (Xvfb, Qt, OpenGL) and a virtual
# environment in .venv with torch (CPU wheel) installed first, then the package.
# Usage: scripts/setup.sh [extras]   (extras default: qt,test; scripts/test.sh adds dev)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-qt,test}"
APT_PACKAGES="xvfb xauth libgl1 libegl1 libglib2.0-0 libfontconfig1 libxkbcommon0 libdbus-1-3 \
libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
libxcb-render-util0 libxcb-shape0"

missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
.venv/bin/python -c "import torch" 2>/dev/null || $PIP install -q "torch==2.13.0"
$PIP install -q -e ".[${EXTRAS}]"
echo "setup: ready ($(.venv/bin/python -c 'import torch, napari; print("torch", torch.__version__, "napari", napari.__version__)'))"
