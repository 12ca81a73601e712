"""Colour themes and presentation mode for the whole application.

Every theme is an explicit Fusion palette: ``QStyleHints.setColorScheme(Dark)`` is
ignored on bare Linux desktops (PITFALLS.md), so relying on the platform would
leave a light window on a machine that asked for dark.

pyqtgraph reads its background/foreground defaults only when a plot widget is
created, so ``apply_theme`` sets them for widgets made afterwards and
``theme_colors`` gives views the colours to restyle plots that already exist.
"""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtGui import QColor, QFont, QPalette
from PyQt6.QtWidgets import QApplication, QStyleFactory

THEMES = ("dark", "light", "high_contrast")

PRESENTATION_SCALE = 1.6

# One table per theme; every colour is a hex string so that views can pass them
# straight to pyqtgraph (pens, brushes, backgrounds) as well as to Qt.
_COLORS: dict[str, dict[str, str]] = {
    "dark": {
        "window": "#2b2d30", "window_text": "#e6e6e6", "base": "#1e1f22",
        "alternate_base": "#27292c", "text": "#e6e6e6", "button": "#3a3c40",
        "button_text": "#e6e6e6", "highlight": "#3d7bd9", "highlighted_text": "#ffffff",
        "link": "#6aa6ff", "tooltip_base": "#3a3c40", "tooltip_text": "#f0f0f0",
        "placeholder": "#8c8c8c", "disabled_text": "#7a7a7a", "mid": "#505357",
        "plot_background": "#161719", "plot_foreground": "#d0d0d0", "grid": "#3c3f44",
        "accent": "#ffb000", "good": "#55c27a", "bad": "#e5534b",
    },
    "light": {
        "window": "#efefef", "window_text": "#1a1a1a", "base": "#ffffff",
        "alternate_base": "#f5f5f5", "text": "#1a1a1a", "button": "#e4e4e4",
        "button_text": "#1a1a1a", "highlight": "#2f6fd0", "highlighted_text": "#ffffff",
        "link": "#1a56b3", "tooltip_base": "#ffffe1", "tooltip_text": "#1a1a1a",
        "placeholder": "#808080", "disabled_text": "#9a9a9a", "mid": "#b8b8b8",
        "plot_background": "#ffffff", "plot_foreground": "#202020", "grid": "#d0d0d0",
        "accent": "#d46b00", "good": "#1f8a3b", "bad": "#c62828",
    },
    # Black background, white text, yellow for everything that signals focus or
    # selection: readable on a washed-out projector and for low-vision users.
    "high_contrast": {
        "window": "#000000", "window_text": "#ffffff", "base": "#000000",
        "alternate_base": "#141414", "text": "#ffffff", "button": "#000000",
        "button_text": "#ffffff", "highlight": "#ffff00", "highlighted_text": "#000000",
        "link": "#00ffff", "tooltip_base": "#000000", "tooltip_text": "#ffff00",
        "placeholder": "#c0c0c0", "disabled_text": "#a0a0a0", "mid": "#ffffff",
        "plot_background": "#000000", "plot_foreground": "#ffffff", "grid": "#808080",
        "accent": "#ffff00", "good": "#00ff00", "bad": "#ff4040",
    },
}

# Thick yellow focus frames: Fusion's 1 px focus hint vanishes on a projector.
# Only the widgets that take keyboard focus are restyled, and each is given a
# full border so Qt switches it to stylesheet rendering consistently.
_HIGH_CONTRAST_QSS = """
QPushButton, QToolButton {
    background: #000000; color: #ffffff; border: 2px solid #ffffff;
    border-radius: 3px; padding: 4px 10px;
}
QPushButton:disabled, QToolButton:disabled { color: #a0a0a0; border-color: #a0a0a0; }
QPushButton:hover, QToolButton:hover { border-color: #ffff00; }
QPushButton:focus, QToolButton:focus, QLineEdit:focus, QComboBox:focus,
QSpinBox:focus, QDoubleSpinBox:focus, QAbstractItemView:focus, QCheckBox:focus,
QRadioButton:focus, QSlider:focus, QTabBar::tab:focus {
    border: 3px solid #ffff00;
}
QPushButton:default { border-width: 3px; }
QCheckBox::indicator, QRadioButton::indicator {
    width: 0.9em; height: 0.9em; border: 2px solid #ffffff; background: #000000;
}
QRadioButton::indicator { border-radius: 0.55em; }
QCheckBox::indicator:checked, QRadioButton::indicator:checked { background: #ffff00; }
QCheckBox::indicator:disabled, QRadioButton::indicator:disabled { border-color: #a0a0a0; }
QToolTip { color: #ffff00; background: #000000; border: 2px solid #ffff00; }
"""

# Marks the style sheet this module installed, so switching themes removes only
# ours and never clobbers one the application set for its own reasons.
_QSS_PROPERTY = "_cnnvis_theme_qss"
_BASE_FONT_PROPERTY = "_cnnvis_base_point_size"
_PRESENTATION_QSS_PROPERTY = "_cnnvis_presentation_qss"
# The window's own chrome in presentation type; the views size their own texts (View.font_pt).
_PRESENTATION_QSS = """
QMenuBar, QMenu, QToolBar, QToolBar QToolButton, QToolBar QComboBox, QToolBar QLabel, QTabBar, QDockWidget,
QStatusBar, QStatusBar QLabel { font-size: SIZEpt; }
"""

_current = "dark"


def theme_colors(name: str | None = None) -> dict[str, str]:
    """The colours of ``name`` (default: the current theme) as hex strings; a copy."""
    name = _current if name is None else name
    if name not in _COLORS:
        raise ValueError(f"unknown theme {name!r}; choose one of {', '.join(THEMES)}")
    return dict(_COLORS[name])


def current_theme() -> str:
    return _current


def make_palette(name: str) -> QPalette:
    """An explicit palette for ``name``, with disabled-state colours filled in."""
    c = theme_colors(name)
    role = QPalette.ColorRole
    pal = QPalette()
    pairs = {
        role.Window: "window", role.WindowText: "window_text", role.Base: "base",
        role.AlternateBase: "alternate_base", role.Text: "text", role.Button: "button",
        role.ButtonText: "button_text", role.Highlight: "highlight",
        role.HighlightedText: "highlighted_text", role.Link: "link",
        role.ToolTipBase: "tooltip_base", role.ToolTipText: "tooltip_text",
        role.PlaceholderText: "placeholder", role.BrightText: "bad", role.Mid: "mid",
    }
    for r, key in pairs.items():
        pal.setColor(r, QColor(c[key]))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(disabled, r, QColor(c["disabled_text"]))
    pal.setColor(disabled, role.Highlight, QColor(c["mid"]))
    return pal


def apply_theme(app: QApplication, name: str) -> None:
    """Switch the whole application to ``name`` (Fusion style + explicit palette)."""
    if name not in _COLORS:
        raise ValueError(f"unknown theme {name!r}; choose one of {', '.join(THEMES)}")
    global _current
    fusion = QStyleFactory.create("Fusion")
    if fusion is not None:
        app.setStyle(fusion)
    app.setPalette(make_palette(name))

    ours = app.property(_QSS_PROPERTY) or ""
    sheet = app.styleSheet()
    if ours and ours in sheet:
        sheet = sheet.replace(ours, "")
    extra = _HIGH_CONTRAST_QSS if name == "high_contrast" else ""
    app.setStyleSheet(sheet + extra)
    app.setProperty(_QSS_PROPERTY, extra)

    c = _COLORS[name]
    pg.setConfigOption("background", c["plot_background"])
    pg.setConfigOption("foreground", c["plot_foreground"])
    _current = name


def set_presentation(app: QApplication, on: bool, base_point_size: float | None = None,
                     scale: float = PRESENTATION_SCALE) -> None:
    """Large fonts for the whole application (projector), or back to the normal size.

    The normal size is remembered on the first call so that toggling never
    compounds; ``base_point_size`` overrides it.
    """
    base = base_point_size
    if base is None:
        base = app.property(_BASE_FONT_PROPERTY)
    if base is None:
        base = app.font().pointSizeF()
        if base <= 0:  # a pixel-sized font reports -1
            base = 10.0
    app.setProperty(_BASE_FONT_PROPERTY, float(base))
    font = QFont(app.font())
    font.setPointSizeF(float(base) * (scale if on else 1.0))
    app.setFont(font)
    # Under a style sheet (the high-contrast theme has one) a new application font does not reach
    # widgets inside a window: the menus, the tool bar, the tab and dock titles kept their small
    # type on the projector. A rule of the style sheet does reach them.
    ours = app.property(_PRESENTATION_QSS_PROPERTY) or ""
    sheet = app.styleSheet()
    if ours and ours in sheet:
        sheet = sheet.replace(ours, "")
    extra = _PRESENTATION_QSS.replace("SIZE", f"{font.pointSizeF():.1f}") if on else ""
    app.setStyleSheet(sheet + extra)
    app.setProperty(_PRESENTATION_QSS_PROPERTY, extra)


def is_presentation(app: QApplication) -> bool:
    base = app.property(_BASE_FONT_PROPERTY)
    return base is not None and app.font().pointSizeF() > float(base) * 1.01
