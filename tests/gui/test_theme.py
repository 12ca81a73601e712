"""Themes switch the palette, style and pyqtgraph defaults; presentation mode enlarges fonts."""
import pyqtgraph as pg
import pytest
from PyQt6.QtGui import QPalette
from PyQt6.QtWidgets import QApplication, QLabel

from visualizer.gui import theme


@pytest.fixture
def app(qapp):
    """Restore the application's look after each test (the QApplication is shared)."""
    palette, font, sheet, style = qapp.palette(), qapp.font(), qapp.styleSheet(), qapp.style().name()
    previous = theme.current_theme()
    yield qapp
    qapp.setPalette(palette)
    qapp.setFont(font)
    qapp.setStyleSheet(sheet)
    qapp.setProperty(theme._QSS_PROPERTY, None)
    qapp.setProperty(theme._BASE_FONT_PROPERTY, None)
    qapp.setStyle(style)
    theme._current = previous
    pg.setConfigOption("background", "k")
    pg.setConfigOption("foreground", "d")


def _window(app):
    return app.palette().color(QPalette.ColorRole.Window).name()


def test_each_theme_applies_a_distinct_palette(app):
    seen = {}
    for name in theme.THEMES:
        theme.apply_theme(app, name)
        assert theme.current_theme() == name
        if app.styleSheet():  # a style sheet wraps the style; its base is what we set
            assert app.style().metaObject().className() == "QStyleSheetStyle"
        else:
            assert app.style().name().lower() == "fusion"
        seen[name] = (_window(app), app.palette().color(QPalette.ColorRole.WindowText).name())
        assert pg.getConfigOption("background") == theme.theme_colors(name)["plot_background"]
    assert len(set(seen.values())) == len(theme.THEMES)
    assert QColorLightness(seen["dark"][0]) < QColorLightness(seen["light"][0])


def QColorLightness(hex_color):
    from PyQt6.QtGui import QColor
    return QColor(hex_color).lightness()


def test_high_contrast_is_black_with_thick_focus_and_reverts(app):
    theme.apply_theme(app, "high_contrast")
    assert _window(app) == "#000000"
    assert app.palette().color(QPalette.ColorRole.WindowText).name() == "#ffffff"
    assert app.palette().color(QPalette.ColorRole.Highlight).name() == "#ffff00"
    assert "3px solid #ffff00" in app.styleSheet()
    theme.apply_theme(app, "light")
    assert "#ffff00" not in app.styleSheet()


def test_apply_theme_keeps_foreign_style_sheet(app):
    app.setStyleSheet("QLabel { margin: 1px; }")
    theme.apply_theme(app, "high_contrast")
    theme.apply_theme(app, "dark")
    assert app.styleSheet() == "QLabel { margin: 1px; }"


def test_unknown_theme_raises(app):
    with pytest.raises(ValueError):
        theme.apply_theme(app, "purple")
    with pytest.raises(ValueError):
        theme.theme_colors("purple")


def test_theme_colors_is_a_copy(app):
    c = theme.theme_colors("dark")
    c["window"] = "#123456"
    assert theme.theme_colors("dark")["window"] != "#123456"
    assert set(theme.theme_colors("light")) == set(c)


def test_presentation_enlarges_fonts_and_toggles_back(app, qtbot):
    label = QLabel("x")
    qtbot.addWidget(label)
    base = app.font().pointSizeF()
    theme.set_presentation(app, True)
    assert app.font().pointSizeF() == pytest.approx(base * theme.PRESENTATION_SCALE)
    # Existing widgets follow through a posted ApplicationFontChange event.
    qtbot.waitUntil(lambda: label.font().pointSizeF() == pytest.approx(base * theme.PRESENTATION_SCALE),
                    timeout=1000)
    assert theme.is_presentation(app)
    theme.set_presentation(app, True)  # twice on does not compound
    assert app.font().pointSizeF() == pytest.approx(base * theme.PRESENTATION_SCALE)
    theme.set_presentation(app, False)
    assert app.font().pointSizeF() == pytest.approx(base)
    assert not theme.is_presentation(app)
    theme.set_presentation(app, True, base_point_size=10)
    assert app.font().pointSizeF() == pytest.approx(16)


def test_qapplication_instance_is_the_fixture(app):
    assert QApplication.instance() is app
