"""Writing an output file whole or not at all, with a one-line error when it cannot be written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from riskreg.errors import InvalidInput


@contextmanager
def replaced_whole(target: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a temporary file beside ``target`` that replaces it once written.

    A failure part-way leaves any earlier file at ``target`` as it was (a backup is not
    truncated by a failed export); an unwritable place is an InvalidInput naming it.
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
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
