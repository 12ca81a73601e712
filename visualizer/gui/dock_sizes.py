"""How wide the main window's side panels are, and what a window resize keeps.

The window is three columns: the Layers/Input panels on the left, the Training panel
on the right, the views between them. Qt spreads any change of the window's width
over all docks, and sizes set before the window is shown are scaled by Qt; left to
itself it gave the side panels more room than the views. This keeps:
- on the first show (unless a saved layout was restored) and on Reset layout: side
  panels about a fifth of the window each, the views' column the rest;
- on a window resize: the side panels at the widths they had (the user's, if they
  dragged them), so a maximised window on a projector widens the views.
"""
from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QDockWidget, QMainWindow

SIDE_CAP_SHARE = 0.3   # after a window resize, no side panel keeps more than this share of it
ROUNDING = 4           # pixels Qt's dock layout may give or take from a width asked for
# Shares of the views' column (overview strip, view tabs, curves) by default; the tabs get the rest.
STRIP_SHARE, CURVES_SHARE = 0.16, 0.28
SHORT_WINDOW = 800                    # a window less tall than this is a short one (a projector's 720)
SMALL_STRIP_SHARE, SMALL_CURVES_SHARE = 0.13, 0.34


class DockSizes(QObject):
    def __init__(self, window: QMainWindow, left: QDockWidget, left_lower: QDockWidget,
                 right: QDockWidget, middle: tuple[QDockWidget | None, ...]):
        """``left`` over ``left_lower`` on the left, ``right`` on the right, ``middle``:
        the views' column from top to bottom (overview, view tabs, curves; None if absent)."""
        super().__init__(window)
        self.window, self.left, self.left_lower, self.right, self.middle = window, left, left_lower, right, middle
        self.sized = False            # default sizes applied (on the first show)
        self.restored = False         # a saved layout was restored: keep its sizes
        self.side_widths: tuple[int, int] | None = None   # what a window resize keeps
        self._laid_out_width = -1
        self._internal = False         # set_side_widths is calling resizeDocks
        self._asked: tuple[int, int] | None = None   # what set_side_widths last asked for
        self._adopting = 0             # an outside resizeDocks is being laid out: what it gives is kept
        self._restored_from: tuple[int, int] | None = None   # the widths the last restore started from
        self._restore_due = False
        for dock in (left, right):
            dock.installEventFilter(self)

    def apply_defaults(self) -> None:
        """Side panels about a fifth of the window each, the views' column the rest.

        Applied once the window has its real size (first show, or Reset layout).
        """
        win = self.window
        w, h = max(win.width(), 800), max(win.height(), 600)
        overview, tabs, curves = self.middle
        # Floors a projector's 1280 pixels can afford (the panels' contents fit; the views need the rest).
        self.set_side_widths(min(380, max(250, int(0.2 * w))), min(400, max(280, int(0.21 * w))))
        win.resizeDocks([self.left, self.left_lower], [int(0.42 * h), int(0.58 * h)], Qt.Orientation.Vertical)
        strip, plots = self.shares()
        heights = {overview: int(strip * h), tabs: int((1 - strip - plots) * h), curves: int(plots * h)}
        column = [d for d in self.middle if d is not None]
        win.resizeDocks(column, [heights[d] for d in column], Qt.Orientation.Vertical)

    def shares(self) -> tuple[float, float]:
        """(overview strip, curves) shares of the views' column. A short window (a 1280x720 projector)
        gives the curves a bit more, or their axes are too short to read."""
        return (SMALL_STRIP_SHARE, SMALL_CURVES_SHARE) if self.window.height() < SHORT_WINDOW \
            else (STRIP_SHARE, CURVES_SHARE)

    def set_curves_share(self, share: float | None) -> None:
        """Share the view tabs' and the curves' height so the curves get ``share`` of the column
        (None: the default); a lesson about the curves gives them more."""
        _overview, tabs, curves = self.middle
        if tabs is None or curves is None or not (_docked(tabs) and _docked(curves)):
            return
        strip, plots = self.shares()
        share = plots if share is None else float(share)
        both = tabs.height() + curves.height()
        column = 1 - strip
        self.window.resizeDocks([tabs, curves], [int(both * (column - share) / column), int(both * share / column)],
                                Qt.Orientation.Vertical)

    def apply_defaults_later(self) -> None:
        """After Reset layout: once the restored docks are laid out."""
        QTimer.singleShot(0, self.apply_defaults)

    def set_side_widths(self, left: int, right: int) -> None:
        """The side panels at these widths, the views' column gets the rest of the window."""
        win = self.window
        middle = next((d for d in self.middle if d is not None and _docked(d)), None)
        row = [d for d in (self.left, middle, self.right) if d is not None and _docked(d)]
        if middle is None or len(row) < 2:
            return  # the user rearranged the window: leave it alone
        # Qt shares out any space not given in the list by the listed sizes' weights:
        # the views' column must be in the list, or the side panels take all of it.
        # Never below what a panel needs (Qt would take the difference from the other panel).
        left = max(left, self.left.minimumSizeHint().width())
        right = max(right, self.right.minimumSizeHint().width())
        widths = {self.left: left, self.right: right}
        rest = win.width() - sum(widths[d] for d in row if d is not middle)
        self._laid_out_width = win.width()
        self._asked = (left, right)
        if self.side_widths is not None:     # laid out: these are the widths kept from now on
            self.side_widths = (left, right)  # (Qt's rounding settles in _restore_widths)
        self._internal = True
        try:
            win.resizeDocks(row, [widths.get(d, max(200, rest)) for d in row], Qt.Orientation.Horizontal)
        finally:
            self._internal = False

    def window_shown(self) -> None:
        """The window's showEvent: the first time, default sizes (unless a saved layout was restored)."""
        if self.sized:
            return
        self.sized = True
        if not self.restored:
            self.apply_defaults()
            # Once more after Qt's first layout of the shown window, which spreads the width over the
            # docks by their size hints and undid the first (the side panels came out ~15% too wide).
            QTimer.singleShot(0, self.apply_defaults)
        QTimer.singleShot(0, lambda: QTimer.singleShot(0, self._note_laid_out))

    def window_resized(self, event) -> None:
        """The window's resizeEvent, after Qt has spread the change over all docks: put the
        side panels back to their widths once it is done."""
        if self.sized and self.side_widths and event.size().width() != event.oldSize().width():
            cap = int(SIDE_CAP_SHARE * self.window.width())
            left, right = (min(cap, w) for w in self.side_widths)
            QTimer.singleShot(0, lambda: self.set_side_widths(left, right))

    def eventFilter(self, obj, event) -> bool:
        # A side panel resized while the window kept its width: the user dragged it (a mouse button
        # is down) or we set it; those are the widths a window resize keeps. Without the mouse it was
        # Qt re-laying out the window after some text changed size, which crept the panels wider a
        # few pixels at a time (a view column squeezed to its minimum): put them back.
        if event.type() == QEvent.Type.Resize and self.window.width() == self._laid_out_width:
            widths = (self.left.width(), self.right.width())
            dragged = QGuiApplication.mouseButtons() != Qt.MouseButton.NoButton
            if dragged or self.side_widths is None or self._adopting:
                self.side_widths = widths
            elif widths != self.side_widths and not self._restore_due:
                self._restore_due = True
                QTimer.singleShot(0, self._restore_widths)
        return False

    def explicit_resize(self) -> None:
        """The window's resizeDocks was called from outside (a lesson, a test standing in for a drag):
        the widths it gives are kept. Qt lays the docks out on a later turn of the event loop; the
        mark lasts a few turns."""
        if self._internal:
            return
        self._adopting += 1
        QTimer.singleShot(50, self._adopted)

    def _adopted(self) -> None:
        self._adopting -= 1

    def _restore_widths(self) -> None:
        self._restore_due = False
        widths = (self.left.width(), self.right.width())
        if self.side_widths is None or widths == self.side_widths:
            return
        if widths == self._restored_from:
            # Putting them back did not hold (a panel's minimum width, a small window): these are the widths.
            self.side_widths, self._restored_from = widths, None
            return
        self._restored_from = widths
        self.set_side_widths(*self.side_widths)

    def _note_laid_out(self) -> None:
        self._laid_out_width = self.window.width()
        # The widths asked for (Qt's first layouts may have drifted from them), or a saved layout's.
        current = (self.left.width(), self.right.width())
        asked = self._asked
        near = asked is not None and all(abs(a - c) <= ROUNDING for a, c in zip(asked, current))
        self.side_widths = current if self.restored or asked is None or near else asked
        if self.side_widths != current:
            self._restore_widths()


def _docked(dock: QDockWidget) -> bool:
    return dock.isVisible() and not dock.isFloating()
