"""The repository stays navigable: three entry points in scripts/, every benchmark and tool listed
where a newcomer looks for it, documentation links that lead somewhere, and scripts outside the
package that still match the package's API (they are not run by the suite, so a rename in the
package would otherwise break them silently)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "benchmarks" / "README.md", ROOT / "tools" / "README.md"]
SCRIPT_DIRS = ("benchmarks", "tools")


def test_scripts_holds_only_the_three_entry_points():
    assert sorted(p.name for p in (ROOT / "scripts").iterdir()) == ["run.sh", "setup.sh", "test.sh"]


@pytest.mark.parametrize("folder", SCRIPT_DIRS)
def test_every_script_is_listed_in_its_folder_readme(folder):
    listing = (ROOT / folder / "README.md").read_text(encoding="utf-8")
    scripts = [p.name for p in (ROOT / folder).iterdir() if p.suffix in (".py", ".sh")]
    assert scripts, f"{folder}/ is empty?"
    assert not [s for s in scripts if f"`{s}`" not in listing], f"{folder}/README.md does not list them"


def test_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#+ (.+)", line)
        if heading:
            out.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return out


def _broken_links(doc: Path) -> list[str]:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists() or (anchor and anchor not in _anchors(path)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documentation_links_resolve(doc):
    assert not _broken_links(doc)


def test_the_link_check_sees_a_broken_file_and_a_broken_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# A heading, with punctuation!\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](other.md#a-heading-with-punctuation) [f](missing.md) [a](other.md#nowhere) [w](https://x.org)")
    assert _broken_links(doc) == ["missing.md", "other.md#nowhere"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documentation_names_no_moved_script(doc):
    named = set(re.findall(r"scripts/([\w.]+)", doc.read_text(encoding="utf-8")))
    assert named <= {"setup.sh", "run.sh", "test.sh"}


def _top_level_names(module_path: Path) -> set[str]:
    tree = ast.parse(module_path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _missing_package_names(script: Path) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("napari_nevseg"):
            module_file = _module_file(node.module)
            if module_file is None:
                missing.append(node.module)
                continue
            names = _top_level_names(module_file)
            submodules = {p.stem for p in module_file.parent.glob("*.py")} if module_file.name == "__init__.py" else set()
            missing += [f"{node.module}.{a.name}" for a in node.names if a.name not in names | submodules]
    return missing


@pytest.mark.parametrize("script", sorted(p for d in SCRIPT_DIRS for p in (ROOT / d).glob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_benchmarks_and_tools_import_what_the_package_has(script):
    assert not _missing_package_names(script)


def test_the_import_check_sees_a_renamed_module_and_a_renamed_name(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from napari_nevseg.core.hitl import colour_shift\n"
                      "from napari_nevseg.core.adapt import colour_shift, finetune_round\n"
                      "from napari_nevseg.core import adapt\n")
    assert _missing_package_names(script) == ["napari_nevseg.core.hitl", "napari_nevseg.core.adapt.finetune_round"]
