"""A save replaces only what it should: symlinks are followed, non-files refused, permissions kept,
and only provably abandoned temporary files are swept."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from visualizer.cli import main
from visualizer.core.checkpoint import SaveError, TrustStore, atomic_write, save_checkpoint, sweep_stale_temp
from visualizer.core.checkpoint.atomic import STALE_AFTER_S
from visualizer.core.model_bundle import ModelBundle

SHA_A, SHA_B = "a" * 64, "b" * 64


def bundle(seed: int) -> ModelBundle:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    return ModelBundle(model=net, input_shape=(1, 8, 8), class_names=("a", "b", "c"))


def weights(path: Path) -> torch.Tensor:
    return torch.load(path, weights_only=True)["state_dict"]["2.bias"]


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look untouched for ``seconds`` (a real leftover of an earlier run)."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


# ---- symlinks are followed to their target -----------------------------------------------------
def test_a_symlinked_latest_checkpoint_keeps_pointing_at_its_run(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    run = runs / "run-1.pt"
    save_checkpoint(run, bundle(1))
    latest = tmp_path / "latest.pt"
    latest.symlink_to(Path("runs") / "run-1.pt")   # relative, as `ln -s runs/run-1.pt latest.pt` makes

    new = bundle(2)
    save_checkpoint(latest, new)

    assert latest.is_symlink() and os.readlink(latest) == os.path.join("runs", "run-1.pt")
    assert torch.equal(weights(run), new.model[2].bias.detach())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "runs"]
    assert sorted(p.name for p in runs.iterdir()) == ["run-1.pt"]   # no temp file left beside the target


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path):
    link = tmp_path / "latest.pt"
    link.symlink_to(tmp_path / "run-2.pt")
    save_checkpoint(link, bundle(3))
    assert link.is_symlink() and (tmp_path / "run-2.pt").is_file()
    assert torch.equal(weights(link), bundle(3).model[2].bias.detach())


def test_a_symlinked_trust_store_is_updated_not_replaced(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "trusted_models.json"
    real.write_text('{"sha256": []}')
    link = tmp_path / "config" / "trusted_models.json"
    link.parent.mkdir()
    link.symlink_to(real)

    store = TrustStore(link)
    store.trust(SHA_A)
    store.trust(SHA_B)

    assert link.is_symlink() and link.resolve() == real
    assert TrustStore(real).trusted() == {SHA_A, SHA_B}


def test_a_symlink_loop_is_refused(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(SaveError, match="loop"):
        save_checkpoint(a, bundle(1))
    assert a.is_symlink() and b.is_symlink()


# ---- only regular files are replaced --------------------------------------------------------------
def test_a_folder_at_the_destination_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "model.pt"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(SaveError) as e:
        save_checkpoint(folder, bundle(1))
    assert str(folder) in str(e.value) and "is a folder" in str(e.value)
    assert folder.is_dir() and (folder / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_device_is_refused_directly_and_through_a_symlink(tmp_path):
    for dest in (Path("/dev/null"), tmp_path / "null.pt"):
        if dest.parent == tmp_path:
            dest.symlink_to("/dev/null")
        with pytest.raises(SaveError) as e:
            save_checkpoint(dest, bundle(1))
        assert str(dest) in str(e.value) and "is a device" in str(e.value)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["null.pt"]


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    with pytest.raises(SaveError, match="named pipe"):
        save_checkpoint(fifo, bundle(1))   # opening a FIFO would block forever: it is never opened
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_missing_folder_is_named(tmp_path):
    dest = tmp_path / "no" / "such" / "m.pt"
    with pytest.raises(SaveError) as e:
        save_checkpoint(dest, bundle(1))
    assert f"its folder {dest.parent} does not exist" in str(e.value)


# ---- permissions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o755])
def test_the_replaced_file_keeps_its_permission_bits(tmp_path, mode):
    dest = tmp_path / "m.pt"
    save_checkpoint(dest, bundle(1))
    dest.chmod(mode)
    save_checkpoint(dest, bundle(2))
    assert stat.S_IMODE(dest.stat().st_mode) == mode
    assert torch.equal(weights(dest), bundle(2).model[2].bias.detach())


def test_a_new_file_gets_the_umask_default(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.json", lambda f: f.write(b"{}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640


def test_a_private_target_is_never_readable_by_others_while_it_is_written(tmp_path):
    dest = tmp_path / "secret.json"
    dest.write_bytes(b"{}")
    dest.chmod(0o600)
    seen = []

    def write(f):
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".secret.json.cnnvis-")]
        seen.append(stat.S_IMODE(tmp.stat().st_mode))
        f.write(b'{"a": 1}')

    atomic_write(dest, write)
    assert seen == [0o600] and dest.read_bytes() == b'{"a": 1}'


# ---- train checks --out before it trains ----------------------------------------------------------
@pytest.mark.parametrize("case", ["folder", "missing folder", "empty", "device"])
def test_train_refuses_an_unwritable_out_before_training(tmp_path, capsys, case):
    out = {"folder": str(tmp_path), "missing folder": str(tmp_path / "gone" / "run.pt"),
           "empty": "", "device": "/dev/null"}[case]
    rc = main(["train", "--dataset", "digits", "--epochs", "50", "--quiet", "--out", out])
    captured = capsys.readouterr()
    assert rc == 2
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("cnn-visualizer train: error: ")
    assert {"folder": "is a folder", "missing folder": "does not exist", "empty": "no file name given",
            "device": "is a device"}[case] in line
    assert "epoch" not in captured.out   # refused before a single epoch ran


# ---- the sweep removes only provably abandoned temporary files ----------------------------------
def test_the_sweep_removes_only_old_unlocked_files_of_our_naming_scheme(tmp_path):
    old_ours = tmp_path / ".m.pt.cnnvis-4242-0badcafe.tmp"
    old_ours_before_locks = tmp_path / ".m.pt.cnnvis-4243.tmp"   # the naming of earlier versions
    fresh_ours = tmp_path / ".m.pt.cnnvis-4244-12345678.tmp"
    others = [tmp_path / ".hidden.tmp", tmp_path / "m.pt", tmp_path / ".m.pt.4242.tmp",
              tmp_path / ".thesis.docx.cnnvis.tmp"]
    for p in (old_ours, old_ours_before_locks, fresh_ours, *others):
        p.write_bytes(b"x")
    for p in (old_ours, old_ours_before_locks, *others):
        age(p, STALE_AFTER_S + 5)
    link = tmp_path / ".notes.txt.cnnvis-4245-aaaaaaaa.tmp"   # a symlink with our name: never followed
    (tmp_path / "notes.txt").write_text("keep")
    link.symlink_to(tmp_path / "notes.txt")
    age(link, STALE_AFTER_S + 5)

    assert sorted(sweep_stale_temp(tmp_path)) == sorted([old_ours, old_ours_before_locks])
    assert fresh_ours.exists() and all(p.exists() for p in others)
    assert link.is_symlink() and (tmp_path / "notes.txt").read_text() == "keep"
    # once past the grace period, the fresh one goes too
    assert sweep_stale_temp(tmp_path, now=time.time() + STALE_AFTER_S + 5) == [fresh_ours]


def test_the_sweep_keeps_a_file_another_process_holds_locked(tmp_path):
    temp = tmp_path / ".m.pt.cnnvis-99999-deadbeef.tmp"
    temp.write_bytes(b"PK half a checkpoint")
    holder = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(temp)!r}, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        age(temp, 3600)
        assert sweep_stale_temp(tmp_path) == [] and temp.exists()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert sweep_stale_temp(tmp_path) == [temp] and not temp.exists()   # its holder is gone now


def test_a_save_in_progress_in_this_process_holds_its_lock_against_the_sweep(tmp_path):
    dest = tmp_path / "m.json"
    kept = []

    def write(f):
        (tmp,) = tmp_path.glob(".m.json.cnnvis-*.tmp")
        age(tmp, 3600)
        kept.append(sweep_stale_temp(tmp_path) == [] and tmp.exists())
        f.write(b"{}")

    atomic_write(dest, write)
    assert kept == [True] and dest.read_bytes() == b"{}"
