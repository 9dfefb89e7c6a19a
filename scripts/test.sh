#!/usr/bin/env bash
# The whole test suite, slow tests included, under a virtual X server. Sets everything up first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh qt,test
export QT_QPA_PLATFORM=xcb NAPARI_ASYNC=0 PYTHONFAULTHANDLER=1
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest "$@"
