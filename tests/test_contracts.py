"""The layers of the package, as the import contracts in pyproject.toml declare them, hold.

import-linter comes with the ``dev`` extra (``scripts/test.sh`` installs it). Its contracts see
imports anywhere in a module, inside functions too, and indirect ones (the core importing a
module that imports Qt), which the AST scan in test_boundaries.py does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import importlinter  # noqa: F401  (the dev extra; tools/gpu_check_env.py skips this file without it)

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    code = "import sys\nfrom importlinter.cli import lint_imports\nsys.exit(lint_imports(no_cache=True))"
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_every_import_contract_is_kept():
    declared = (ROOT / "pyproject.toml").read_text(encoding="utf-8").count("[[tool.importlinter.contracts]]")
    assert declared >= 2, "the contracts moved out of pyproject.toml?"
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{declared} kept, 0 broken" in result.stdout


def test_the_contracts_catch_a_core_module_that_imports_the_widgets(tmp_path):
    """The same contracts, run on a copy of the package whose core imports the widgets (through
    a function-level import, which a glance at the top of the file would miss), must break."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "napari_nevseg", tmp_path / "napari_nevseg",
                    ignore=shutil.ignore_patterns("*.safetensors", "__pycache__"))
    offender = tmp_path / "napari_nevseg" / "core" / "offender.py"
    offender.write_text("def f():\n    from napari_nevseg.widgets import main_widget\n    return main_widget\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and "napari_nevseg.core.offender" in result.stdout
