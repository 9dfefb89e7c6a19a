"""What this machine has, for tools/gpu_check.sh: versions, the GPU, and which test files can run.

    python tools/gpu_check_env.py            # prints a report
    python tools/gpu_check_env.py --ignores  # prints pytest --ignore options, one per line

The core needs torch, numpy, scipy, scikit-image, pillow and safetensors (tifffile only for TIFF
files). Test files whose top-level imports are missing here (tifffile, hypothesis, ...) are
ignored rather than failed, and the report says which and why.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ("torch", "numpy", "scipy", "skimage", "PIL", "safetensors")
OPTIONAL = ("tifffile", "pytest", "hypothesis", "psutil", "monai", "napari")


def have(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def unrunnable_tests() -> dict[str, list[str]]:
    """``{test file: [missing modules]}`` for the core test files (not tests/widgets)."""
    out = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        missing = sorted(m for m in top_level_imports(path) if m not in ("napari_nevseg", "conftest") and not have(m))
        if missing:
            out[str(path.relative_to(ROOT))] = missing
    return out


def needs_console_script() -> list[str]:
    """Tests that run the installed ``nevseg`` console script (through ``_nevseg_script``): they
    cannot pass where the package runs from the checkout uninstalled, so they are deselected."""
    if (Path(sys.executable).parent / "nevseg").is_file():
        return []
    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                calls = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
                if "_nevseg_script" in calls:
                    found.append(f"{path.relative_to(ROOT)}::{node.name}")
    return found


def main() -> int:
    if "--ignores" in sys.argv:
        for path in unrunnable_tests():
            print(f"--ignore={path}")
        for test in needs_console_script():
            print(f"--deselect={test}")
        return 0
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    missing_core = [m for m in CORE if not have(m)]
    for name in CORE + OPTIONAL:
        if have(name):
            module = __import__(name)
            print(f"  {name:<12} {getattr(module, '__version__', 'present')}")
        else:
            print(f"  {name:<12} MISSING{' (core dependency!)' if name in CORE else ''}")
    if not missing_core:
        import torch

        print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            print(f"  GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, bf16: {torch.cuda.is_bf16_supported()}, "
                  f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    for path, missing in unrunnable_tests().items():
        print(f"  skipping {path}: needs {', '.join(missing)}")
    for test in needs_console_script():
        print(f"  deselecting {test}: needs the installed nevseg script (the package is not installed here)")
    return 1 if missing_core else 0


if __name__ == "__main__":
    raise SystemExit(main())
