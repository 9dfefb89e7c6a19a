"""Import boundaries: a cheap package import, a Qt-free core, a working command line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import napari_nevseg

PACKAGE = Path(napari_nevseg.__file__).parent
CORE = PACKAGE / "core"
GUI_MODULES = {"napari", "qtpy", "magicgui", "superqt", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy"}
SUBCOMMANDS = ("predict", "train", "evaluate", "bench")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = _run(sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_import_package_is_cheap():
    loaded = _modules_after("import napari_nevseg")
    assert "napari_nevseg" in loaded
    heavy = {m.split(".")[0] for m in loaded} & {"torch", "napari", "qtpy", "magicgui", "PyQt6", "PyQt5"}
    assert not heavy, f"import napari_nevseg imported {sorted(heavy)}"


def test_reading_an_image_does_not_import_torch_or_gui():
    loaded = _modules_after("import napari_nevseg.core.image_io, napari_nevseg.core.project")
    assert "napari_nevseg.core.image_io" in loaded
    assert not {m.split(".")[0] for m in loaded} & ({"torch"} | GUI_MODULES)


def test_cli_parser_does_not_import_torch():
    loaded = _modules_after("from napari_nevseg.cli import build_parser\nbuild_parser()")
    assert "napari_nevseg.cli" in loaded
    assert not {m.split(".")[0] for m in loaded} & ({"torch"} | GUI_MODULES)


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def test_core_never_imports_gui_modules():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 10, "the core package moved?"
    offenders = {}
    for path in files:
        bad = {n for n in _imported_names(path) if n.split(".")[0] in GUI_MODULES or n.startswith("napari_nevseg.widgets")}
        if bad:
            offenders[path.name] = sorted(bad)
    assert not offenders, f"core modules import GUI code: {offenders}"


def test_ast_scan_catches_a_gui_import(tmp_path):
    """The scanner above must see every import form (or the boundary test proves nothing)."""
    sample = tmp_path / "m.py"
    sample.write_text(
        "import os\nfrom qtpy import QtCore\ndef f():\n    import napari.layers\n"
        "    __import__('magicgui')\n    import importlib; importlib.import_module('superqt')\n"
    )
    assert {"qtpy", "napari.layers", "magicgui", "superqt"} <= _imported_names(sample)


def _nevseg_script() -> Path:
    script = Path(sys.executable).parent / "nevseg"
    assert script.is_file(), f"the nevseg console script is not installed next to {sys.executable}"
    return script


def test_nevseg_help():
    result = _run(str(_nevseg_script()), "--help")
    assert result.returncode == 0, result.stderr
    for command in SUBCOMMANDS:
        assert command in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command, capsys):
    from napari_nevseg.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nevseg " + command)
    assert "--help" in out


def test_subcommand_help_through_script():
    result = _run(str(_nevseg_script()), "predict", "--help")
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout and "--model" in result.stdout


def test_python_m_help():
    result = _run(sys.executable, "-m", "napari_nevseg", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: " in result.stdout and "predict" in result.stdout


def test_version_flag(capsys):
    from napari_nevseg.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert napari_nevseg.__version__ in capsys.readouterr().out
