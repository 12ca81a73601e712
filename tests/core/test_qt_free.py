"""core/ must stay usable without Qt: from a plain script or a headless training job."""
import ast
import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).resolve().parents[2] / "visualizer" / "core"
FORBIDDEN = ("PyQt6", "PyQt5", "PySide6", "pyqtgraph", "visualizer.gui")


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: resolve against the file's package
                pkg = path.relative_to(CORE.parent.parent).with_suffix("").parts[: -node.level]
                yield ".".join((*pkg, node.module))
            else:
                yield node.module


def test_no_core_file_imports_qt_or_gui():
    files = sorted(CORE.rglob("*.py"))
    assert files, "no core modules found"
    bad = [(str(p.relative_to(CORE)), m) for p in files for m in _imports(p)
           if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []


def test_importing_all_of_core_loads_no_qt():
    mods = [".".join(p.relative_to(CORE.parent.parent).with_suffix("").parts)
            for p in sorted(CORE.rglob("*.py")) if p.name != "__init__.py" or p.parent != CORE]
    code = ("import sys, importlib\n"
            f"for m in {mods!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PyQt6','pyqtgraph','PySide6') or m.startswith('visualizer.gui')]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
