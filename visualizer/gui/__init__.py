"""The PyQt6/pyqtgraph side of the app.

pyqtgraph's global options are set here, once, before any view creates an
item: snapshots store maps row-major (C, H, W), and pyqtgraph's default
column-major order would show every map transposed. The leak workaround in
pyqtgraph_fixes is installed here too, for the same reason.
"""
import pyqtgraph as pg

from . import pyqtgraph_fixes

pg.setConfigOptions(imageAxisOrder="row-major")
pyqtgraph_fixes.install()
