"""A quiet terminal: native log lines of MediaPipe, TFLite and absl hidden unless asked for.

MediaPipe's C++ graph, TFLite's XNNPACK delegate and absl write their log
lines (``W0000 00:00:... file.cc:114] ...``, ``INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.``) straight to file descriptor 2 from native threads,
past Python's ``sys.stderr``; ``GLOG_minloglevel`` / ``TF_CPP_MIN_LOG_LEVEL``
are not honoured by ``mediapipe==0.10.21`` (tried; both are still set, for
builds that do).  So :func:`install` puts a filter on fd 2 itself: fd 2 becomes
a pipe, a reader thread drops the native info/warning lines and passes every
other byte on to the real stderr (errors, ``E``/``F`` lines, crashes, child
processes' output), and Python's ``sys.stderr`` writes straight to the real
stderr (progress bars stay immediate).

:func:`captured` hides the chatter of one block (Blender's exporters print to
fd 1) and shows it only when the block fails, so nothing is lost.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

#: Native log lines hidden by :func:`install`: absl/glog info and warning lines
#: (``I0000 ...`` / ``W0000 ...`` with time, thread and ``file:line]``), and the two
#: lines TFLite and absl print before absl is initialised.  Errors (``E``, ``F``) pass.
NATIVE_NOISE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
#: Environment variables asking native libraries for warnings and up only.
NATIVE_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
#: Set to "1" by ``lagc-hand --verbose``: processes started from it (the server's job
#: workers) then show the native lines too.
VERBOSE_ENV = "LAGC_HAND_VERBOSE"

_filter: Optional["_Fd2Filter"] = None
_lock = threading.Lock()


def is_native_noise(line: bytes) -> bool:
    """True for a native info/warning log line that :func:`install` hides."""
    return NATIVE_NOISE.match(line.lstrip(b"\r")) is not None


class _Fd2Filter:
    """fd 2 -> pipe -> (drop native noise) -> the real stderr, in a daemon thread."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.real = os.dup(2)
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        self.read_end = r
        # Python's own stderr writes go to the real stderr directly, unfiltered and unbuffered.
        self.stream = open(self.real, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                           errors="backslashreplace", closefd=False)
        self.previous_stream = sys.stderr
        sys.stderr = self.stream
        self.thread = threading.Thread(target=self._pump, name="lagc-stderr-filter", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not is_native_noise(line))
            if out:
                os.write(self.real, out)
        if pending and not is_native_noise(pending):
            os.write(self.real, pending)
        os.close(self.read_end)

    def close(self) -> None:
        """Give fd 2 back to the real stderr and forward what is still in the pipe."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.real, 2)  # closes the pipe's write end: the reader sees EOF
        self.thread.join(timeout=2.0)
        if sys.stderr is self.stream:
            sys.stderr = self.previous_stream


def install(verbose: bool = False) -> None:
    """Hide native info/warning log lines for the rest of the process (idempotent).

    verbose: True leaves the terminal as it is (everything shown).  Call it early,
    before MediaPipe is imported; it works afterwards too, for lines written later.
    A no-op when ``sys.stderr`` is not the process's own (e.g. under pytest's capture).
    """
    global _filter
    if verbose or sys.stderr is not sys.__stderr__:
        # Verbose, or someone else already redirects stderr (a test runner capturing
        # output, an embedding application): theirs to manage, not ours.
        return
    for k, v in NATIVE_ENV.items():
        os.environ.setdefault(k, v)
    with _lock:
        if _filter is None:
            try:
                _filter = _Fd2Filter()
            except OSError:  # no fd 2 to filter (closed, odd embedding): leave it be
                return
            atexit.register(uninstall)


def set_verbose(verbose: bool) -> None:
    """Record the user's ``--verbose`` for child processes (see :data:`VERBOSE_ENV`)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def verbose_requested() -> bool:
    """Whether ``--verbose`` was given to the process that started this one."""
    return os.environ.get(VERBOSE_ENV) == "1"


def uninstall() -> None:
    """Undo :func:`install` (at exit, and for tests)."""
    global _filter
    with _lock:
        if _filter is not None:
            _filter.close()
            _filter = None


@contextmanager
def captured(verbose: bool = False) -> Iterator[None]:
    """Run the block with fds 1 and 2 (and ``sys.stdout``/``sys.stderr``) going to a
    temporary file; print that file to stderr only if the block raises.
    verbose: True = do nothing, show everything."""
    if verbose:
        yield
        return
    for s in (sys.stdout, sys.stderr):
        s.flush()
    saved = (os.dup(1), os.dup(2))
    streams = (sys.stdout, sys.stderr)
    with tempfile.TemporaryFile() as tmp:
        text = open(tmp.fileno(), "w", buffering=1, closefd=False)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        sys.stdout = sys.stderr = text
        try:
            yield
        except BaseException:
            _restore(saved, streams, text)
            tmp.seek(0)
            sys.stderr.write(tmp.read().decode("utf-8", "replace"))
            sys.stderr.flush()
            raise
        else:
            _restore(saved, streams, text)


def _restore(saved: tuple[int, int], streams: tuple, text) -> None:
    text.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in saved:
        os.close(fd)
    sys.stdout, sys.stderr = streams
