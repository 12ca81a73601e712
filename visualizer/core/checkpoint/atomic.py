"""Atomic file replacement: a reader sees the old file or the new one, never half of one.

A direct ``torch.save`` killed mid-write leaves an unreadable file, and on a full
disk it destroys the previous checkpoint too. So: write a temporary file in the
same folder (``os.replace`` is atomic only within one file system), fsync it,
replace, then fsync the folder so the rename itself survives a power cut.
Temporary files are named ``.<name>.cnnvis-<pid>.tmp`` so that a later start can
tell whose they were and sweep the ones whose writer died; the ``cnnvis-`` marker
keeps the sweep off other programs' temporary files.
"""
from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path
from typing import BinaryIO, Callable

from ..errors import LoadError

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.cnnvis-(?P<pid>\d+)\.tmp$")
# A temp file whose writer is still alive is left alone unless it has not been
# written for this long (the pid may have been reused by an unrelated process).
ALIVE_WRITER_GRACE_S = 600.0
DEAD_WRITER_GRACE_S = 0.0


class SaveError(LoadError):
    """A save failed; the previous file at the destination is unchanged."""


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.cnnvis-{os.getpid()}.tmp")


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


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path`` and move it into place.

    On any failure the temporary file is removed and ``path`` is untouched;
    OS errors (disk full, permissions) become :class:`SaveError` naming the file.
    """
    dest = Path(path)
    tmp = temp_path_for(dest)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _save_error(dest, e) from e
        raise
    _fsync_dir(dest.parent)


def _save_error(dest: Path, e: OSError) -> SaveError:
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        hint = "the previous file is unchanged; free some disk space or save elsewhere"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the previous file is unchanged; choose a folder you can write to"
    else:
        hint = "the previous file is unchanged"
    return SaveError(dest, f"could not save ({reason})", hint)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def sweep_stale_temp(folder: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Delete our temporary files left behind by a writer that died; return what was removed.

    A file is stale when its writer's pid is gone, or when nothing has written it
    for ``ALIVE_WRITER_GRACE_S`` (pid reuse). Files of a save in progress are kept.
    """
    root = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    now = time.time() if now is None else now
    for p in entries:
        m = _TEMP_RE.match(p.name)
        if m is None or not p.is_file():
            continue
        pid = int(m.group("pid"))
        try:
            age = now - p.stat().st_mtime
        except OSError:
            continue
        alive = pid == os.getpid() or _pid_alive(pid)
        if age >= (ALIVE_WRITER_GRACE_S if alive else DEAD_WRITER_GRACE_S):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
