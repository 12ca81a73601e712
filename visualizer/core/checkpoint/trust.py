"""Remembered user decisions to trust a model file, keyed by its SHA-256 only.

Never by path or name: a file replaced under the same name is a different file
and must be confirmed again. Stored as JSON under the per-user config folder
(``$CNN_VISUALIZER_CONFIG_DIR``, else ``~/.config/cnn-visualizer``), written atomically.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .atomic import SaveError, atomic_write

TRUST_FILE = "trusted_models.json"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def config_dir() -> Path:
    env = os.environ.get("CNN_VISUALIZER_CONFIG_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "cnn-visualizer"


class TrustStore:
    """``is_trusted(sha)`` / ``trust(sha)`` / ``forget(sha)`` over a small JSON file.

    A missing or unreadable file means "nothing trusted" (fail closed).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else config_dir() / TRUST_FILE

    def _read(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        hashes = data.get("sha256") if isinstance(data, dict) else None
        if not isinstance(hashes, list):
            return set()
        return {h for h in hashes if isinstance(h, str) and _SHA256_RE.match(h)}

    def _write(self, hashes: set[str]) -> None:
        """Raises SaveError (the store on disk unchanged) when the file or its folder cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SaveError(self.path, f"cannot create its folder ({e.strerror or e})",
                            "check that the per-user config folder can be written") from e
        text = json.dumps({"sha256": sorted(hashes)}, indent=1).encode("utf-8")
        atomic_write(self.path, lambda f: f.write(text))

    @staticmethod
    def _norm(sha256: str) -> str:
        sha = str(sha256).strip().lower()
        if not _SHA256_RE.match(sha):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return sha

    def is_trusted(self, sha256: str) -> bool:
        try:
            return self._norm(sha256) in self._read()
        except ValueError:
            return False

    def trust(self, sha256: str) -> None:
        hashes = self._read()
        hashes.add(self._norm(sha256))
        self._write(hashes)

    def forget(self, sha256: str) -> None:
        hashes = self._read()
        hashes.discard(self._norm(sha256))
        self._write(hashes)

    def trusted(self) -> frozenset[str]:
        return frozenset(self._read())
