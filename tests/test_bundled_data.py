"""The built-in data sets come with the repository: a clean copy of its tracked files reads them.

A copy of exactly what git tracks, in a folder with no ``../shared`` beside it, is what a
user who clones the repository has; anything the built-in ``mnist`` needed from elsewhere
would fail here.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

READ_MNIST = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import visualizer
from visualizer.core.datasets import load_dataset
ds = load_dataset("mnist")
print(json.dumps({"package": visualizer.__file__, "source": ds.source, "n": len(ds),
                  "shape": list(ds.native_shape), "labels": sorted(set(ds.labels.tolist())),
                  "counts": np.bincount(ds.labels).tolist(), "mean": float(ds.images.mean())}))
"""


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"not a git checkout ({e})")
    return [p for p in out.stdout.decode().split("\0") if p]


def test_mnist_reads_from_a_clean_copy_of_the_tracked_files(tmp_path):
    files = tracked_files()
    assert "resources/data/t10k-images-idx3-ubyte.gz" in files
    assert "resources/data/t10k-labels-idx1-ubyte.gz" in files
    assert "resources/data/MNIST-LICENSE.md" in files
    copy = tmp_path / "clone"
    for rel in files:
        src = REPO / rel
        if src.is_file():     # a tracked file deleted in the working tree is simply absent
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / rel)
    assert not (tmp_path / "shared").exists()
    r = subprocess.run([sys.executable, "-c", READ_MNIST, str(copy)], cwd=copy, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert Path(got["package"]).is_relative_to(copy)           # the copy's code, not this checkout's
    assert Path(got["source"]) == copy / "resources" / "data" / "t10k-images-idx3-ubyte.gz"
    assert got["n"] == 10_000 and got["shape"] == [1, 28, 28] and got["labels"] == list(range(10))
    assert got["counts"][:2] == [980, 1135]                    # the published class counts of the test split
    assert 30 < got["mean"] < 36                                # ~33.3: real ink on black, not an empty array
