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
