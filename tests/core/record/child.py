"""A Python child process whose stdout lines are collected as they come (tests wait on them)."""
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


class Child:
    def __init__(self, script: str, *args: str):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, str(HERE / script), *map(str, args)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.eof = False
        self._cond = threading.Condition()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def wait_line(self, predicate, timeout: float = 20.0) -> str:
        """The first line (so far or to come) that satisfies ``predicate``; fails after ``timeout``."""
        def found():
            return next((l for l in self.lines if predicate(l)), None)
        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self.eof, timeout)
            line = found()
        if line is None:
            raise AssertionError(f"the child printed no such line within {timeout} s; stdout: {self.lines[-5:]}, "
                                 f"stderr: {self.stderr_tail()}")
        return line

    def count(self, predicate) -> int:
        with self._cond:
            return sum(1 for l in self.lines if predicate(l))

    def stderr_tail(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()[-2000:]

    def kill(self) -> None:
        """SIGKILL, then every line it printed before dying is in ``lines``."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._pump.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        self.proc.stderr.close()
        return False
