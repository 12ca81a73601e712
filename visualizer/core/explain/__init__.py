"""Explaining one value of the real model: a conv, pooling or fully connected unit step by step
(``steps``), and class activation maps (``cam``).

This package's ``__init__`` and ``records`` import no torch, so the window's process can read
the records; ``steps`` and ``cam`` do the work with torch, in the process that owns the model.
"""
