"""The package's imports run one way: no module reaches itself again through the lvsa modules it
imports, at the top or inside a function (an import circle works only while every edge but one
stays inside a function, and breaks when someone moves one), and every module imports on its own
in a fresh interpreter."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import lvsa

ROOT = Path(lvsa.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(("lvsa", *(parts[:-1] if parts[-1] == "__init__" else parts)))] = path
    return modules


def _imported(name: str, path: Path, known: dict) -> set[str]:
    """The lvsa modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known.keys()
            found.update(submodules)  # `from pkg import module` imports the module (pkg is its parent)
            if len(submodules) < len(node.names):
                found.add(base)
    return {module for module in found if module in known and module != name}


def test_no_import_circle():
    known = _modules()
    edges = {name: _imported(name, path, known) for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for imported in sorted(edges[name]):
            visit(imported, path + [name])
        done.add(name)

    for name in sorted(known):
        visit(name, [])


def test_every_module_imports_on_its_own():
    # One interpreter; before each module every Python module of lvsa is dropped, so each starts
    # from nothing of lvsa (torch, diffusers and lvsa's compiled extensions stay loaded: they are
    # not what is checked, and a nanobind extension cannot be initialised twice in one process).
    names = sorted(_modules())
    if importlib.util.find_spec("lvsa._cuda") is None:  # built with LVSA_CUDA=OFF: no kernels to bind
        names.remove("lvsa.backends.cuda")
    script = ("import importlib, sys\n"
              f"for name in {names!r}:\n"
              "    for loaded in [m for m in sys.modules if (m == 'lvsa' or m.startswith('lvsa.'))\n"
              "                   and m not in ('lvsa._native', 'lvsa._cuda')]:\n"
              "        del sys.modules[loaded]\n"
              "    importlib.import_module(name)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
