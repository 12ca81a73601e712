"""Dialogs: trusting a model file, naming the architecture of bare weights, shortcuts."""
from __future__ import annotations

import os

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QFont, QFontDatabase, QPalette
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .widgets.choices import FALLBACK_ARCHITECTURES, names


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _selectable(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def _hash_field(text: str) -> QLineEdit:
    """A read-only, frameless, monospace line: a hash is never wrapped or cut, so it
    can be selected and compared whole, and it scrolls instead of widening the dialog."""
    edit = QLineEdit(text)
    edit.setReadOnly(True)
    edit.setFrame(False)
    edit.setCursorPosition(0)
    # Only the family is set, so the size still follows the application font (presentation mode).
    font = QFont()
    font.setFamilies([QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()])
    font.setStyleHint(QFont.StyleHint.Monospace)
    edit.setFont(font)
    edit.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Tab order: Cancel, checkbox, Open
    return edit


def fit_height(dialog: QDialog) -> None:
    """Grow a dialog to the height its word-wrapped labels need at its current width
    (top-level windows ignore height-for-width, so wrapped text would be cut off)."""
    lay = dialog.layout()
    if lay is not None and lay.hasHeightForWidth():
        need = lay.totalHeightForWidth(dialog.width())
        if need > dialog.height():
            dialog.resize(dialog.width(), need)


def _is_torch(global_name: str) -> bool:
    return global_name == "torch" or global_name.startswith("torch.")


class TrustDialog(QDialog):
    """Asks before opening a file that can only be loaded by running code from it.

    Cancel is the default and has the focus: Enter, Escape and closing the
    window all refuse. Only a deliberate click on "Open and run its code" accepts.
    """

    def __init__(self, info, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Run code from this file?")
        self.setModal(True)
        self.info = info
        path = str(getattr(info, "path", "") or "")

        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(48, 48))
        warning = QLabel(
            "<b>Opening this file runs Python code stored inside it.</b><br>"
            "Code from a file can do anything your user account can: read or delete your files, "
            "install programs, send data away. Open it only if you trust where it came from. "
            "A safe alternative is a plain weights file (state dict or .safetensors).")
        warning.setWordWrap(True)
        warning.setTextFormat(Qt.TextFormat.RichText)
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(warning, 1)

        form = QFormLayout()
        form.addRow("File:", _selectable(path))
        form.addRow("Size:", _selectable(human_size(getattr(info, "size", None))))
        self.sha_label = _hash_field(str(getattr(info, "sha256", "") or "unknown"))
        form.addRow("SHA-256:", self.sha_label)
        form.addRow("Format:", _selectable(str(getattr(info, "format", "") or "unknown")))

        # Every global outside torch's weights-only allow-list: what is outside PyTorch
        # (the user's classes, builtins) first; PyTorch's own classes (nn layers) after it.
        self.globals_list = QListWidget()
        self.globals_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        names = [str(g) for g in (getattr(info, "unsafe_globals", None) or ())]
        outside = [n for n in names if not _is_torch(n)]
        inside = [n for n in names if _is_torch(n)]
        self.globals_list.addItems(outside)
        for n in inside:
            item = QListWidgetItem(f"{n}  (PyTorch)")
            item.setForeground(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            self.globals_list.addItem(item)
        if not names:
            self.globals_list.addItem("(none listed)")
        line = self.globals_list.fontMetrics().lineSpacing() + 2
        self.globals_list.setMaximumHeight(max(2, min(len(names), 8)) * line + 12)
        globals_box = QGroupBox(f"Code the file refers to: {len(outside)} outside PyTorch, "
                                f"{len(inside)} in PyTorch")
        globals_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        QVBoxLayout(globals_box).addWidget(self.globals_list)

        self.remember_check = QCheckBox("Remember this file (by its SHA-256)")
        self.remember_check.setToolTip("Do not ask again for a file with exactly these bytes")

        self.open_button = QPushButton("Open and run its code")
        self.cancel_button = QPushButton("Cancel")
        self.open_button.setAutoDefault(False)
        self.open_button.setDefault(False)
        self.cancel_button.setAutoDefault(True)
        self.cancel_button.setDefault(True)
        buttons = QDialogButtonBox()
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(form)
        lay.addWidget(globals_box)
        lay.addStretch(1)  # spare height goes here, not into a near-empty list
        lay.addWidget(self.remember_check)
        lay.addWidget(buttons)
        self.setMinimumWidth(560)
        sha_width = self.sha_label.fontMetrics().horizontalAdvance(self.sha_label.text())
        width = max(560, sha_width + 8 * self.fontMetrics().averageCharWidth() + 60)
        self.resize(width, lay.totalHeightForWidth(width))
        self.cancel_button.setFocus()

    def showEvent(self, ev):
        super().showEvent(ev)
        fit_height(self)
        # Focus again once shown: the first focusable widget would otherwise win.
        self.cancel_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def remember(self) -> bool:
        return self.remember_check.isChecked()

    @staticmethod
    def ask(info, parent=None) -> tuple[bool, bool]:
        """(accepted, remember); remember is only ever True together with accepted."""
        dlg = TrustDialog(info, parent)
        accepted = dlg.exec() == QDialog.DialogCode.Accepted
        return accepted, accepted and dlg.remember()


def _hint_count(class_names_guess) -> int | None:
    if class_names_guess is None:
        return None
    if isinstance(class_names_guess, int):
        return class_names_guess
    try:
        n = len(class_names_guess)
    except TypeError:
        return None
    return n or None


class ArchitectureDialog(QDialog):
    """For a file of bare weights: which network do they belong to?

    ``result_value()`` is ``{"arch": name, "arch_options": {...}}`` for a zoo
    architecture, or ``{"model_spec": "file.py:Name"}`` for the user's own class.
    The keyword hints (from the weights' shapes) prefill the form.
    """

    def __init__(self, class_names_guess=None, parent=None, *, in_channels: int = 1,
                 arch_guess: str | None = None, input_size: int | None = None):
        super().__init__(parent)
        self.setWindowTitle("Which network are these weights for?")
        self._specs = self._load_specs()
        self._input_size_hint = input_size

        intro = QLabel("This file holds only weights, not the network's structure. "
                       "Choose the architecture they were trained with.")
        intro.setWordWrap(True)

        self.zoo_radio = QRadioButton("A built-in &architecture")
        self.user_radio = QRadioButton("My own model &class (Python file)")
        group = QButtonGroup(self)
        group.addButton(self.zoo_radio)
        group.addButton(self.user_radio)
        self.zoo_radio.setChecked(True)

        self.arch_combo = QComboBox()
        for name, title in names("visualizer.core.architectures", "ARCHITECTURES", FALLBACK_ARCHITECTURES):
            self.arch_combo.addItem(title if title == name else f"{title} ({name})", name)
        if arch_guess:
            i = self.arch_combo.findData(arch_guess)
            if i >= 0:
                self.arch_combo.setCurrentIndex(i)
        self.in_channels = QSpinBox()
        self.in_channels.setRange(1, 64)
        self.in_channels.setValue(int(in_channels))
        self.num_classes = QSpinBox()
        self.num_classes.setRange(1, 100_000)
        self.num_classes.setValue(_hint_count(class_names_guess) or 10)
        self.input_size = QSpinBox()
        self.input_size.setRange(8, 1024)
        self.input_size.setSuffix(" px")
        self._apply_default_input_size()

        zoo = QWidget()
        zf = QFormLayout(zoo)
        zf.addRow("Architecture", self.arch_combo)
        zf.addRow("Input channels", self.in_channels)
        zf.addRow("Classes", self.num_classes)
        zf.addRow("Input size", self.input_size)

        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("/path/to/my_model.py")
        self.browse_button = QPushButton("Browse…")
        self.class_edit = QLineEdit()
        self.class_edit.setPlaceholderText("MyNet")
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_button)
        user = QWidget()
        uf = QFormLayout(user)
        uf.addRow("Python file", file_row)
        uf.addRow("Class name", self.class_edit)
        user_note = QLabel("The class must be constructible without arguments. "
                           "Loading it runs the code in that file.")
        user_note.setWordWrap(True)
        uf.addRow(user_note)
        self._zoo_page, self._user_page = zoo, user

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.zoo_radio)
        lay.addWidget(zoo)
        lay.addWidget(self.user_radio)
        lay.addWidget(user)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(480)

        self.zoo_radio.toggled.connect(self._update)
        self.arch_combo.currentIndexChanged.connect(self._apply_default_input_size)
        self.file_edit.textChanged.connect(self._update)
        self.class_edit.textChanged.connect(self._update)
        self.browse_button.clicked.connect(self._browse)
        self._update()

    def showEvent(self, ev):
        super().showEvent(ev)
        fit_height(self)

    @staticmethod
    def _load_specs() -> dict:
        try:
            from visualizer.core.architectures import ARCHITECTURES
            return dict(ARCHITECTURES)
        except Exception:  # noqa: BLE001 - the zoo may be absent; names fall back
            return {}

    def _apply_default_input_size(self, *_):
        spec = self._specs.get(self.arch_combo.currentData())
        size = self._input_size_hint or getattr(spec, "default_input_size", None) or 32
        if isinstance(size, (tuple, list)):
            size = size[-1]
        self.input_size.setValue(int(size))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Python file with the model class", "",
                                              "Python files (*.py);;All files (*)")
        if path:
            self.file_edit.setText(path)

    def _update(self, *_):
        zoo = self.zoo_radio.isChecked()
        self._zoo_page.setEnabled(zoo)
        self._user_page.setEnabled(not zoo)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self._valid())

    def _valid(self) -> bool:
        if self.zoo_radio.isChecked():
            return self.arch_combo.currentData() is not None
        path = self.file_edit.text().strip()
        return path.endswith(".py") and self.class_edit.text().strip().isidentifier()

    def select_user_model(self, path: str, class_name: str) -> None:
        self.user_radio.setChecked(True)
        self.file_edit.setText(path)
        self.class_edit.setText(class_name)

    def result_value(self) -> dict:
        if self.zoo_radio.isChecked():
            return {"arch": self.arch_combo.currentData(),
                    "arch_options": {"in_channels": int(self.in_channels.value()),
                                     "num_classes": int(self.num_classes.value()),
                                     "input_size": int(self.input_size.value())}}
        path = os.path.expanduser(self.file_edit.text().strip())
        return {"model_spec": f"{path}:{self.class_edit.text().strip()}"}

    @staticmethod
    def ask(class_names_guess=None, parent=None, **hints) -> dict | None:
        dlg = ArchitectureDialog(class_names_guess, parent, **hints)
        return dlg.result_value() if dlg.exec() == QDialog.DialogCode.Accepted else None


class ShortcutsDialog(QDialog):
    """A table of the keyboard shortcuts of the actions it is given."""

    def __init__(self, actions: list[QAction], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = []
        for a in actions:
            if a is None or a.isSeparator():
                continue
            keys = ", ".join(s.toString(s.SequenceFormat.NativeText) for s in a.shortcuts() if not s.isEmpty())
            if keys:
                rows.append((a.text().replace("&&", "\0").replace("&", "").replace("\0", "&"), keys))
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        for r, (text, keys) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(text))
            self.table.setItem(r, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(close)
        self.resize(420, min(600, 80 + 30 * max(len(rows), 3)))

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text())
                for r in range(self.table.rowCount())]
