"""Per-user settings: window layout, theme, last choices and recent files.

One IniFormat file at a path we choose (not Qt's organisation lookup) so that
tests and users can point it anywhere with ``$CNN_VISUALIZER_CONFIG_DIR``.
Every read passes ``type=``: QSettings otherwise hands back strings such as
``'true'`` and ``None`` for empty lists (PITFALLS.md).
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any

from PyQt6.QtCore import QByteArray, QSettings

MAX_RECENT = 10


def config_dir() -> pathlib.Path:
    """Where per-user state lives: ``$CNN_VISUALIZER_CONFIG_DIR`` or ~/.config/cnn-visualizer."""
    env = os.environ.get("CNN_VISUALIZER_CONFIG_DIR")
    if env:
        return pathlib.Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return pathlib.Path(base) / "cnn-visualizer"


class Settings:
    """Typed accessors over one QSettings ini file.

    Settings never stop the app from starting: when the config folder cannot be
    created, this session's settings live in a temporary folder (and are lost at
    exit), and ``problems`` says so for the window to report once.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.problems: list[str] = []
        self._scratch: tempfile.TemporaryDirectory | None = None
        if path is None:
            folder = config_dir()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                self._scratch = tempfile.TemporaryDirectory(prefix="cnn-visualizer-settings-")
                self.problems.append(f"the settings folder {folder} cannot be created ({e.strerror or e}): "
                                     "this session starts with the defaults and its settings are not kept")
                folder = pathlib.Path(self._scratch.name)
            path = folder / "settings.ini"
        self.path = pathlib.Path(path)
        self._q = QSettings(str(self.path), QSettings.Format.IniFormat)

    # ---- generic typed access -------------------------------------------------
    def get(self, key: str, default: Any, type_: type | None = None) -> Any:
        if not self._q.contains(key):
            return default
        kind = type_ or (type(default) if default is not None else str)
        try:
            return self._q.value(key, default, type=kind)
        except (TypeError, ValueError):
            # A hand-edited or older file with the wrong type must not stop the app.
            return default

    def set(self, key: str, value: Any) -> None:
        self._q.setValue(key, value)

    def sync(self) -> None:
        self._q.sync()

    # ---- window ------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        return self.get("window/geometry", None, QByteArray) or None

    def window_state(self) -> QByteArray | None:
        return self.get("window/state", None, QByteArray) or None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.set("window/geometry", geometry)
        self.set("window/state", state)

    # ---- appearance ------------------------------------------------------------
    @property
    def theme(self) -> str:
        return self.get("appearance/theme", "dark", str)

    @theme.setter
    def theme(self, name: str) -> None:
        self.set("appearance/theme", name)

    # ---- last choices (training panel options, selected layer...) --------------
    def last_options(self) -> dict:
        """Last training-panel options; stored as JSON because QSettings mangles nested dicts."""
        raw = self.get("training/options", "", str)
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def set_last_options(self, options: dict) -> None:
        self.set("training/options", json.dumps(options, default=str))

    # ---- recent files ------------------------------------------------------------
    def recent_files(self) -> list[str]:
        raw = self.get("files/recent", [], list)
        return [str(p) for p in (raw or []) if p][:MAX_RECENT]

    def add_recent(self, path: str | os.PathLike) -> list[str]:
        p = os.path.abspath(os.fspath(path))
        files = [p] + [f for f in self.recent_files() if f != p]
        files = files[:MAX_RECENT]
        self.set("files/recent", files)
        return files

    def clear_recent(self) -> None:
        self.set("files/recent", [])
