"""The installed app is complete: a wheel built from this tree trains and renders on its own.

The slow test builds the wheel, installs it into a fresh virtual environment and runs the
console script from a folder outside the source tree, so nothing can be found through the
checkout. To stay fast and offline the new venv borrows this venv's dependencies (torch,
PyQt6, ...) through a .pth file, and the wheel itself is installed with --no-deps.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a built tree must not copy: other builds, venvs and caches.
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", "out", ".shots")


def test_the_package_list_names_every_package_of_the_source_tree():
    # pyproject lists packages by hand (the resources/models mapping needs it): a new
    # subpackage left out of that list would be missing from the wheel.
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "visualizer").rglob("__init__.py")}
    assert on_disk <= listed, f"packages missing from pyproject.toml: {sorted(on_disk - listed)}"
    mapped = set(config["package-dir"])
    assert listed - on_disk == mapped | {"visualizer.resources.data"}


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.mark.slow
def test_a_built_wheel_installed_in_a_fresh_venv_trains_and_renders(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE)
    wheels = tmp_path / "wheels"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                  str(src)], cwd=tmp_path)
    said = (build.stdout + build.stderr).lower()
    assert "deprecat" not in said and "would be ignored" not in said, build.stderr
    (wheel,) = wheels.glob("cnn_visualizer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("visualizer/resources/data/digits.csv.gz", "visualizer/resources/data/t10k-images-idx3-ubyte.gz",
                    "visualizer/resources/data/t10k-labels-idx1-ubyte.gz", "visualizer/resources/data/MNIST-LICENSE.md",
                    "visualizer/models/lenet5_digits.pt",
                    "visualizer/models/lenet5_mnist.pt", "visualizer/models/simplecnn_shapes.pt"):
        assert shipped in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    fresh_site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           cwd=tmp_path).stdout.strip())
    # Dependencies come from this venv, the project itself must not: a path in a .pth is only
    # appended to sys.path (after the fresh site-packages), and the .pth files inside it, such as
    # this checkout's editable-install finder, are not run. The check below proves it.
    (fresh_site / "borrowed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                    str(wheel)], cwd=tmp_path)
    assert "deprecat" not in (install.stdout + install.stderr).lower(), install.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1",
               CNN_VISUALIZER_CONFIG_DIR=str(tmp_path / "config"))
    installed = Path(_run([str(py), "-c", "import visualizer, visualizer.core.resources as r; "
                           "print(visualizer.__file__); print(r.sample_model_path())"], cwd=work, env=env)
                     .stdout.split()[-2])
    assert fresh_site in installed.parents, f"imported {installed}, not the installed wheel"
    mnist = _run([str(py), "-c", "from visualizer.core.datasets import load_dataset; ds = load_dataset('mnist'); "
                  "print(len(ds), ds.native_shape, ds.source)"], cwd=work, env=env).stdout.split("\n")[-2]
    assert mnist.startswith("10000 (1, 28, 28) ") and fresh_site in Path(mnist.split()[-1]).parents, mnist

    script = env_dir / "bin" / "cnn-visualizer"
    out = work / "run.pt"
    r = _run([str(script), "train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(out)],
             cwd=work, env=env)
    assert f"saved {out}" in r.stdout and out.stat().st_size > 10_000
    assert "epoch 1/1: loss" in r.stdout + r.stderr

    sample = fresh_site / "visualizer" / "models" / "lenet5_digits.pt"
    figures = work / "figures"
    r = _run([str(script), "render", str(sample), "--out", str(figures)], cwd=work, env=env)
    written = [Path(line) for line in r.stdout.splitlines() if line.endswith(".png")]
    assert len(written) >= 5 and all(p.parent == figures and p.stat().st_size > 1000 for p in written)
    assert "blank image" not in r.stderr  # the sample's own dataset (the shipped digits) was found
