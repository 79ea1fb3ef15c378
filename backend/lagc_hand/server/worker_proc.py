"""The job worker *process*: runs :func:`lagc_hand.api.reconstruct` away from
the HTTP server's interpreter.

Why a process and not a thread: the pipeline holds Python's GIL for long
stretches (tracking, fitting set-up), which made status requests wait tens to
hundreds of milliseconds behind it; and a native crash (MediaPipe, torch, an
out-of-memory kill) now ends one job, not the server.  Worker processes also
run at a lower CPU priority (``nice``), so the server, and Blender beside it,
stay responsive while a job uses every core.

Protocol over a ``multiprocessing`` pipe (tuples, parent -> child):
``("run", job_id, source, options_dict, result_path)``, ``("cancel",)``, ``("stop",)``;
child -> parent: ``("ready",)``, ``("progress", stage, done, total, fps)``,
``("done", summary, num_frames)``, ``("cancelled",)``, ``("error", code, message)``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback

#: Error code of each user-facing exception class (by name, checked in MRO order).
ERROR_CODES = {
    "InputError": "invalid_video",
    "ModelFileError": "model_file",
    "EngineUnavailable": "engine_unavailable",
}


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def json_safe(value):
    """A JSON-able copy of ``value`` (numpy scalars / arrays / paths become plain values)."""
    return json.loads(json.dumps(value, default=_json_default))


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the server process dies (even by ``kill -9``), so
    no orphan keeps computing a job nobody will collect.  Elsewhere the closed
    pipe ends the worker at its next progress report."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def child_main(conn, nice: int, torch_threads: int) -> None:
    """Entry point of a worker process; serves jobs until ``("stop",)`` or EOF."""
    # Ctrl-C in a terminal reaches the whole process group; the server decides
    # when workers stop (it cancels their jobs first, so they end 'interrupted').
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:
            pass
    from lagc_hand import quiet

    # The server's log shows MediaPipe's / TFLite's native info lines only with --verbose;
    # before the warm-up, which loads them.
    quiet.install(quiet.verbose_requested())
    from lagc_hand.api import Progress, ReconstructOptions, reconstruct
    from lagc_hand.errors import Cancelled, LagcHandError
    from lagc_hand_blender.core import handmotion

    try:  # warm up: the first job should not pay for importing torch / MediaPipe
        import lagc_hand.pipeline  # noqa: F401
        import torch

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
    except Exception:  # the job itself will report what is missing
        pass
    conn.send(("ready",))

    pending_stop = False
    while not pending_stop:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        if msg[0] != "run":
            continue  # a late "cancel" for a job that already ended
        _, job_id, source, options, result_path = msg
        cancelled = False
        last = [0, 0, 0.0]  # frames_done, frames_total, fps of the last report

        def should_cancel() -> bool:
            nonlocal cancelled, pending_stop
            while conn.poll():
                m = conn.recv()
                if m[0] == "cancel":
                    cancelled = True
                elif m[0] == "stop":
                    cancelled = pending_stop = True
            return cancelled

        def progress(p: Progress) -> None:
            last[:] = [int(p.frames_done), int(p.frames_total), float(p.fps or 0.0)]
            conn.send(("progress", str(p.stage), *last))

        try:
            if should_cancel():  # cancelled (or server stopping) while we were still warming up
                raise Cancelled("cancelled")
            result = reconstruct(source, ReconstructOptions(**options), progress, should_cancel)
            progress(Progress("write", *last))
            if should_cancel():
                raise Cancelled("cancelled")
            handmotion.save(result.motion, result_path)  # atomic: temp file, then rename
            conn.send(("done", json_safe(result.summary or {}), int(result.motion.num_frames)))
        except Cancelled:
            conn.send(("cancelled",))
        except LagcHandError as exc:
            code = next((ERROR_CODES[c.__name__] for c in type(exc).__mro__ if c.__name__ in ERROR_CODES), "failed")
            conn.send(("error", code, str(exc) or type(exc).__name__))
        except Exception as exc:
            conn.send(("error", "internal",
                       f"internal error ({type(exc).__name__}: {str(exc)[:200]}); see the server log",
                       traceback.format_exc()))
