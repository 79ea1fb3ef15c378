"""Atomic file writes (standard library only): write to a temporary file in the
destination folder, flush it to disk, then rename it over the final name, so a
crash or an error never leaves a half-written file under that name."""
from __future__ import annotations

import os
import tempfile
from typing import IO, Callable, Optional


def write_atomic(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = True,
                 prefix: str = ".lagc-", suffix: str = ".part", mode: Optional[int] = None) -> str:
    """Create ``path`` by calling ``write(f)`` on a temporary file beside it.

    binary: open the temporary file in binary (default) or text (UTF-8) mode.
    mode:   optional permission bits applied before the rename (e.g. ``0o600``).
    Returns the final path; on any exception the temporary file is removed and
    the exception propagates, leaving an existing ``path`` untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
