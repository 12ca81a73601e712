"""TrustDialog refuses by default; ArchitectureDialog and ShortcutsDialog report what was chosen."""
from types import SimpleNamespace

import pytest
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QGroupBox, QLabel

from visualizer.gui.dialogs import ArchitectureDialog, ShortcutsDialog, TrustDialog, human_size

SHA = "ab" * 32


def _info(**kw):
    base = dict(path="/tmp/model.pt", size=3 * 1024 * 1024 + 5, sha256=SHA, format="pickled nn.Module",
                needs_trust=True, unsafe_globals=("mymodels.Net", "builtins.eval"))
    base.update(kw)
    return SimpleNamespace(**base)


def _texts(widget):
    return " ".join(lbl.text() for lbl in widget.findChildren(QLabel))


def test_trust_dialog_shows_facts(qtbot):
    dlg = TrustDialog(_info())
    qtbot.addWidget(dlg)
    text = _texts(dlg)
    assert dlg.sha_label.text() == SHA and dlg.sha_label.isReadOnly()
    assert "/tmp/model.pt" in text and "3.0 MiB" in text
    assert "pickled nn.Module" in text and "runs Python code" in text
    items = [dlg.globals_list.item(i).text() for i in range(dlg.globals_list.count())]
    assert items == ["mymodels.Net", "builtins.eval"]


def test_trust_dialog_lists_what_is_outside_pytorch_first(qtbot):
    dlg = TrustDialog(_info(unsafe_globals=(
        "torch.nn.modules.container.Sequential", "mymodels.Net", "torch.nn.modules.conv.Conv2d")))
    qtbot.addWidget(dlg)
    items = [dlg.globals_list.item(i).text() for i in range(dlg.globals_list.count())]
    assert items == ["mymodels.Net", "torch.nn.modules.container.Sequential  (PyTorch)",
                     "torch.nn.modules.conv.Conv2d  (PyTorch)"]
    assert any("1 outside PyTorch, 2 in PyTorch" in g.title() for g in dlg.findChildren(QGroupBox))


def test_trust_dialog_cancel_is_default_and_enter_rejects(qtbot):
    dlg = TrustDialog(_info())
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert dlg.cancel_button.isDefault() and not dlg.open_button.isDefault()
    qtbot.waitUntil(lambda: dlg.focusWidget() is dlg.cancel_button, timeout=1000)
    dlg.remember_check.setChecked(True)
    with qtbot.waitSignal(dlg.rejected, timeout=1000):
        QTest.keyClick(dlg.focusWidget(), Qt.Key.Key_Return)
    assert dlg.result() == QDialog.DialogCode.Rejected


def test_trust_dialog_enter_from_checkbox_still_rejects(qtbot):
    dlg = TrustDialog(_info())
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    dlg.remember_check.setFocus()
    with qtbot.waitSignal(dlg.rejected, timeout=1000):
        QTest.keyClick(dlg.remember_check, Qt.Key.Key_Return)


def _answer_later(qtbot, action):
    """Act on the modal dialog once ``exec()`` has shown it."""
    def go():
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(10, go)
            return
        action(dlg)
    QTimer.singleShot(0, go)


def test_trust_ask_accept_with_remember(qtbot):
    def accept(dlg):
        dlg.remember_check.setChecked(True)
        dlg.open_button.click()
    _answer_later(qtbot, accept)
    assert TrustDialog.ask(_info()) == (True, True)


def test_trust_ask_cancel_never_remembers(qtbot):
    def cancel(dlg):
        dlg.remember_check.setChecked(True)
        QTest.keyClick(dlg, Qt.Key.Key_Escape)
    _answer_later(qtbot, cancel)
    assert TrustDialog.ask(_info()) == (False, False)


def test_human_size():
    assert human_size(512) == "512 bytes"
    assert human_size(2048) == "2.0 KiB"
    assert human_size(None) == "unknown"


def test_architecture_dialog_zoo_choice(qtbot):
    dlg = ArchitectureDialog(("a", "b", "c"), None, in_channels=3, arch_guess="resnet18")
    qtbot.addWidget(dlg)
    assert dlg.num_classes.value() == 3 and dlg.in_channels.value() == 3
    assert dlg.arch_combo.currentData() == "resnet18"
    dlg.arch_combo.setCurrentIndex(dlg.arch_combo.findData("lenet5"))
    dlg.num_classes.setValue(7)
    value = dlg.result_value()
    assert value["arch"] == "lenet5"
    assert value["arch_options"]["num_classes"] == 7
    assert value["arch_options"]["in_channels"] == 3
    assert value["arch_options"]["input_size"] >= 8


def test_architecture_dialog_user_model_needs_valid_spec(qtbot):
    dlg = ArchitectureDialog(None)
    qtbot.addWidget(dlg)
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dlg.num_classes.value() == 10
    dlg.user_radio.setChecked(True)
    assert not ok.isEnabled()
    dlg.file_edit.setText("/home/me/nets.py")
    dlg.class_edit.setText("not an identifier")
    assert not ok.isEnabled()
    dlg.class_edit.setText("MyNet")
    assert ok.isEnabled()
    assert dlg.result_value() == {"model_spec": "/home/me/nets.py:MyNet"}


def test_architecture_ask_returns_none_on_cancel(qtbot):
    _answer_later(qtbot, lambda dlg: dlg.reject())
    assert ArchitectureDialog.ask(None) is None
    _answer_later(qtbot, lambda dlg: dlg.accept())
    assert ArchitectureDialog.ask(["x", "y"])["arch_options"]["num_classes"] == 2


def test_shortcuts_dialog_lists_actions(qtbot):
    start = QAction("&Start / pause")
    start.setShortcut(QKeySequence("Space"))
    step = QAction("Step")
    step.setShortcuts([QKeySequence("Ctrl+Right"), QKeySequence("F10")])
    no_key = QAction("About")
    sep = QAction()
    sep.setSeparator(True)
    dlg = ShortcutsDialog([start, step, no_key, sep])
    qtbot.addWidget(dlg)
    rows = dlg.rows()
    assert [r[0] for r in rows] == ["Start / pause", "Step"]
    assert rows[0][1] == QKeySequence("Space").toString(QKeySequence.SequenceFormat.NativeText)
    assert "F10" in rows[1][1]


@pytest.fixture(autouse=True)
def _no_leftover_modal(qtbot):
    yield
    w = QApplication.activeModalWidget()
    if w is not None:
        w.close()
