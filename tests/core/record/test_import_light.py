"""The GUI process reads run files and streams without torch: the record modules must not pull it in."""
import subprocess
import sys

MODULES = ("visualizer.core.record", "visualizer.core.record.encoding", "visualizer.core.record.runfile",
           "visualizer.core.record.stream")


def test_record_modules_load_neither_torch_nor_qt():
    code = ("import sys, importlib\n"
            f"for m in {MODULES!r}: importlib.import_module(m)\n"
            "from visualizer.core.record.record_types import registered_names\n"
            "assert 'TrainingSnapshot' in registered_names() and 'ModelInfo' in registered_names()\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PyQt6', 'pyqtgraph'))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
