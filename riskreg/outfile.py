"""Writing an output file whole or not at all, with a one-line error when it cannot be written."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from riskreg.errors import InvalidInput

# os.umask can only be read by setting it; the lock keeps two threads from seeing each other's 0.
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """Return the process's umask, leaving it as it was.

    Linux reports it in /proc/self/status, which changes nothing; elsewhere it is set to a
    strict 0o077 for an instant and put back, so no file made meanwhile is more open.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permissions a newly created file gets here: 0o666 less the umask (as open() would give)."""
    return 0o666 & ~current_umask()


@contextmanager
def replaced_whole(target: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a temporary file beside ``target`` that replaces it once written.

    A failure part-way (an error, or Ctrl-C) removes the temporary file and leaves any earlier
    file at ``target`` as it was (a backup is not truncated by a failed export); an unwritable
    place is an InvalidInput naming it. The file gets the permissions the umask gives a new
    file (mkstemp's 0o600 would hide it from the group; forcing 0o644 would show a full
    database dump to everyone). It is flushed to disk before the rename, and the rename after,
    so a crash leaves either the old file or the whole new one.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb" if binary else "w", encoding=None if binary else "utf-8") as out:
            yield out
            out.flush()
            _set_mode(out, temporary)
            os.fsync(out.fileno())
        os.replace(temporary, target)
        _sync_folder(target.parent)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _set_mode(out: IO[Any], path: str) -> None:
    """Give the written file the mode the umask allows (mkstemp made it 0o600)."""
    if hasattr(os, "fchmod"):
        os.fchmod(out.fileno(), new_file_mode())
    else:  # Windows before Python 3.13: only the read-only bit means anything there
        os.chmod(path, new_file_mode())


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk (the rename), where the platform allows opening a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows, or a folder that cannot be opened: the rename itself is done
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the file's own data is already synced
    finally:
        os.close(descriptor)
