"""Files shipped in the repository's top-level ``resources/`` folder.

Looked up in the source tree (``<repo>/resources``): an editable install does
not map a top-level folder into the package (PITFALLS.md), so the package's own
location is the one reliable anchor.
"""
from __future__ import annotations

from pathlib import Path

from .errors import LoadError

RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"


def resource_path(*parts: str) -> Path:
    """Path of ``resources/<parts...>``; raises LoadError naming the path if it is missing."""
    path = RESOURCES_DIR.joinpath(*parts)
    if not path.exists():
        raise LoadError(path, "bundled resource is missing",
                        "the installation is incomplete: reinstall from the source tree")
    return path


MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
SAMPLE_MODEL_NAME = "lenet5_digits.pt"  # trained on the built-in digits it opens with
SAMPLE_DATASET = "digits"


def sample_model_path() -> Path | None:
    """The shipped sample checkpoint the app opens with, or None when it is not installed."""
    path = MODELS_DIR / SAMPLE_MODEL_NAME
    return path if path.exists() else None
