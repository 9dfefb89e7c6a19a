#!/usr/bin/env bash
# The whole test suite, slow tests included, under a virtual X server. Sets everything up first
# (with the dev extra: ruff and import-linter), then runs ruff with the project's rules
# (pyproject.toml), then pytest; the import contracts run inside pytest (tests/test_contracts.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh qt,test,dev
.venv/bin/ruff check .
export QT_QPA_PLATFORM=xcb NAPARI_ASYNC=0 PYTHONFAULTHANDLER=1
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest "$@"
