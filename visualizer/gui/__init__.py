"""The PyQt6/pyqtgraph side of the app.

pyqtgraph's global options are set here, once, before any view creates an
item: snapshots store maps row-major (C, H, W), and pyqtgraph's default
column-major order would show every map transposed.
"""
import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major")
