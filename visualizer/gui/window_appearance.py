"""The main window's appearance: theme, and presentation mode for a projector.

A mixin of ``MainWindow``.
"""
from __future__ import annotations

from PyQt6.QtWidgets import QApplication


class WindowAppearance:
    def set_theme(self, name: str) -> None:
        from .theme import apply_theme
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, name)
        if not self._presentation:
            self.settings.theme = name
        self.theme_actions[name].setChecked(True)

    def set_presentation(self, on: bool) -> None:
        from .theme import set_presentation
        on = bool(on)
        if on == self._presentation:
            return
        self._presentation = on
        self.act_presentation.setChecked(on)
        app = QApplication.instance()
        bar = getattr(self, "presentation_bar", None)
        if on and bar is not None:
            # The side panels step aside and a lesson's text moves beside the views before the large
            # type arrives: above the views, in large type, it made the window taller than the screen.
            bar.set_active(True)
        # The font first, then the theme: setting a theme's style sheet re-polishes every widget, which
        # is what makes the new font reach them (under a style sheet, setFont alone reached only some).
        if app is not None:
            set_presentation(app, on)
        if on:
            self._theme_before_presentation = self.settings.theme
            self.set_theme("high_contrast")
            self.showFullScreen()
        else:
            self.set_theme(self._theme_before_presentation or "dark")
            self.showNormal()
        for v in self.views:
            v.set_presentation(on)
        if not on and bar is not None:
            bar.set_active(False)   # the docks back as they were
