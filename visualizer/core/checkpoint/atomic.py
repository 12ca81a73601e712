"""Atomic file replacement: a reader sees the old file or the new one, never half of one.

A direct ``torch.save`` killed mid-write leaves an unreadable file, and on a full
disk it destroys the previous checkpoint too. So: write a temporary file in the
same folder (``os.replace`` is atomic only within one file system), fsync it,
replace, then fsync the folder so the rename itself survives a power cut.

What a save may replace (the rules the README's Safety section states):

* A symbolic link is followed to the file it points at, and that file is
  replaced: a ``latest.pt`` link keeps pointing at its run, a linked trust
  store is updated where it lives. A dangling link creates its target.
* Only a regular file is ever replaced. A folder, a device, a pipe or a socket
  at the destination is refused with :class:`SaveError` before anything is written.
* The replaced file keeps its permission bits (and, where we may, its owner);
  a new file gets the usual ``0o666 & ~umask``.

Temporary files are named ``.<name>.cnnvis-<pid>-<token>.tmp`` and the writer
holds an exclusive ``flock`` on the file for as long as it exists. The sweep of
leftovers removes a file only when all three prove it abandoned: our naming
scheme, untouched for :data:`STALE_AFTER_S`, and not locked. A lock, unlike a
pid, dies with its process and cannot be inherited by an unrelated one that got
the same pid. (``flock`` and not ``fcntl.lockf``: a POSIX record lock belongs to
the process, so the sweep opening and closing the file from another thread of
the writer's own process would silently drop the writer's lock.)
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import BinaryIO, Callable

from ..errors import LoadError

# The second group is optional: files of versions before the lock had only the pid.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.cnnvis-(?P<pid>\d+)(?:-[0-9a-f]+)?\.tmp$")
# A leftover is swept only when nothing has written it for this long. The lock is the real
# test; this covers the instant between creating a temporary file and locking it, and file
# systems on which flock is not available (there nothing is swept as long as it is fresh).
STALE_AFTER_S = 60.0


class SaveError(LoadError):
    """A save failed or was refused; the previous file at the destination is unchanged."""


def _describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def save_target(path: str | os.PathLike) -> tuple[Path, os.stat_result | None]:
    """The regular file a save to ``path`` will replace (symlinks followed), and its stat if it exists.

    Raises SaveError naming ``path`` when the destination is a folder, a device or
    another non-regular file, when its folder does not exist, or when no name is given.
    """
    if not os.fspath(path):
        raise SaveError(path, "no file name given", "give the path of the file to write")
    dest = Path(path)
    target = Path(os.path.realpath(dest))
    via = f" (a link to {target})" if os.path.islink(dest) else ""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _save_error(dest, e) from e
    if st is not None and stat.S_ISLNK(st.st_mode):   # realpath stops at a loop
        raise SaveError(dest, "is a symbolic link that never reaches a file (a loop)",
                        "remove the link or save under another name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise SaveError(dest, f"is {_describe_kind(st.st_mode)}{via}, not a file a save may replace",
                        "give the path of a file to write; nothing was changed")
    if not target.parent.is_dir():
        raise SaveError(dest, f"its folder {target.parent} does not exist{via}",
                        "create the folder first, or save elsewhere")
    return target, st


def _open_locked_temp(target: Path, mode: int) -> tuple[Path, int]:
    tmp = target.with_name(f".{target.name}.cnnvis-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        # No locks on this file system: the fresh mtime alone keeps the sweep away.
    return tmp, fd


def check_writable(path: str | os.PathLike) -> Path:
    """Fail now, not after an hour of training, if a save to ``path`` could not happen.

    Checks what :func:`save_target` checks, then creates and removes a temporary file
    in the destination's folder (a read-only or full file system shows up here too).
    Returns the file a save will replace.
    """
    target, _ = save_target(path)
    try:
        tmp, fd = _open_locked_temp(target, 0o600)
    except OSError as e:
        raise _save_error(Path(path), e) from e
    tmp.unlink(missing_ok=True)
    os.close(fd)
    return target


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms/file systems cannot open a folder; the data is already synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _keep_attributes(fd: int, old: os.stat_result) -> None:
    os.fchmod(fd, stat.S_IMODE(old.st_mode))
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:  # only root may give a file away; the bits are kept all the same
            pass


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file beside the target of ``path`` and move it into place.

    The target is what :func:`save_target` says (symlinks followed, only regular
    files replaced). Stale leftovers in its folder are swept first. On any failure
    the temporary file is removed and the target is untouched; OS errors (disk
    full, permissions) become :class:`SaveError` naming the file.
    """
    dest = Path(path)
    target, old = save_target(dest)
    sweep_stale_temp(target.parent)
    try:
        # An existing target's mode is applied after writing; until then only we can read the data.
        tmp, fd = _open_locked_temp(target, 0o600 if old is not None else 0o666)
    except OSError as e:
        raise _save_error(dest, e) from e
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if old is not None:
            _keep_attributes(fd, old)
        os.replace(tmp, target)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _save_error(dest, e) from e
        raise
    finally:
        os.close(fd)  # releases the lock, after the temporary name is gone
    _fsync_dir(target.parent)


def _save_error(dest: Path, e: OSError) -> SaveError:
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        hint = "the previous file is unchanged; free some disk space or save elsewhere"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the previous file is unchanged; choose a folder you can write to"
    else:
        hint = "the previous file is unchanged"
    return SaveError(dest, f"could not save ({reason})", hint)


def _is_abandoned(path: Path, now: float) -> bool:
    """Ours by name (checked by the caller), a regular file, idle long enough, and not locked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_AFTER_S:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # locked by a live writer, or no locks here: not provably abandoned
            return False
        return True
    finally:
        os.close(fd)


def sweep_stale_temp(folder: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Delete our temporary files that are provably abandoned; return what was removed.

    Abandoned means: named by our scheme, not written for ``STALE_AFTER_S``, and not
    locked (its writer died: a live writer holds the lock while the file exists).
    Anything else, another program's file, a save in progress, a symlink, is left alone.
    """
    root = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    now = time.time() if now is None else now
    for p in entries:
        if _TEMP_RE.match(p.name) is None or not _is_abandoned(p, now):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed
