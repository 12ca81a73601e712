"""Where the files the app ships live: the built-in data sets and the sample models.

The repository keeps them at the top level (``resources/``, ``models/``); a built
wheel carries them inside the package (``visualizer/resources``,
``visualizer/models``: the mapping is in pyproject.toml). So each is looked up
first in the installed package through ``importlib.resources`` and then in the
source tree, because an editable install ignores that mapping (PITFALLS.md).
Every caller that needs a shipped file asks here; nothing else computes the
repository's root.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import LoadError

# <repo>/visualizer/core/resources.py -> <repo>; meaningful only in a source checkout.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MODEL_NAME = "lenet5_mnist.pt"  # trained on the built-in MNIST digits the app opens with
SAMPLE_DATASET = "mnist"


def _shipped_dir(name: str) -> Path:
    """``visualizer/<name>`` of an installed wheel, else ``<repo>/<name>`` of a checkout."""
    installed = files("visualizer") / name
    # A wheel installs unpacked, so the Traversable is a real folder; torch.load needs paths.
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return SOURCE_ROOT / name


def resources_dir() -> Path:
    return _shipped_dir("resources")


def models_dir() -> Path:
    """The folder of the shipped sample models (``*.pt``)."""
    return _shipped_dir("models")


def sample_model_path() -> Path | None:
    """The shipped sample checkpoint the app opens with, or None when it is not installed."""
    path = models_dir() / SAMPLE_MODEL_NAME
    return path if path.exists() else None


def resource_path(*parts: str) -> Path:
    """Path of ``resources/<parts...>``; raises LoadError naming the path if it is missing."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise LoadError(path, "bundled resource is missing",
                        "the installation is incomplete: reinstall cnn-visualizer")
    return path

