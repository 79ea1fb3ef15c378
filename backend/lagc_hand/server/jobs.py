"""The job manager: a queue, ``workers`` threads each driving one worker
process (:mod:`lagc_hand.server.worker_proc`) that runs
:func:`lagc_hand.api.reconstruct`; live progress in memory; cooperative cancel.

Progress arrives many times a second; it is kept in memory (what ``GET`` shows)
and written to SQLite only at stage changes and about once a second, so status
polling never waits on the disk.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lagc_hand.server.config import ServerConfig
from lagc_hand.server.store import JobRecord, JobStore
from lagc_hand.server.worker_proc import child_main

log = logging.getLogger("lagc_hand.server")

#: Seconds between progress writes to SQLite while a stage runs.
PERSIST_INTERVAL_S = 1.0

INTERRUPTED_MESSAGE = (
    "the server stopped before this job finished; nothing was lost but this job's work — "
    "resubmit it (POST /api/v1/jobs/{id}/resubmit)"
)

#: Job states after which an upload is removed (unless --keep-uploads); an
#: interrupted job keeps its upload so that it can be resubmitted.
UPLOAD_DROP_STATES = ("done", "failed", "cancelled")

#: CPU priority offset of worker processes (the HTTP server stays responsive).
WORKER_NICE = 10
#: How often a worker thread checks for cancel requests and a dead child, seconds.
POLL_S = 0.1


@dataclass
class Live:
    """In-memory progress of a running job (what status requests read)."""

    stage: str = "decode"
    frames_done: int = 0
    frames_total: int = 0
    fps: float = 0.0
    last_persist: float = 0.0


class JobManager:
    """Owns the queue and the worker threads.  Thread-safe."""

    def __init__(self, config: ServerConfig, store: JobStore):
        self.config = config
        self.store = store
        self._mp = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._lock = threading.Lock()
        self._live: dict[str, Live] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._deleted: set[str] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover from the previous run, then start the workers."""
        for d in (self.config.results_dir, self.config.uploads_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        interrupted = self.store.mark_interrupted(INTERRUPTED_MESSAGE)
        if interrupted:
            log.warning("%d job(s) were unfinished when the server last stopped; marked interrupted", len(interrupted))
        self._clean_orphans()
        for i in range(max(1, int(self.config.workers))):
            t = threading.Thread(target=self._worker, name=f"lagc-job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask running jobs to stop (they end ``interrupted``) and join the workers."""
        self._stopping.set()
        with self._lock:
            for ev in self._cancel.values():
                ev.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _clean_orphans(self) -> None:
        """Remove temp files of interrupted writes, uploads and results without a
        job row, and flag done jobs whose result file went missing."""
        ids = self.store.all_ids()
        for p in self.config.results_dir.iterdir():
            if p.name.startswith(".") or p.stem not in ids:
                _remove(p)
        for p in self.config.uploads_dir.iterdir():
            if p.name not in ids:
                _remove(p)
        for job_id in self.store.ids_in_state(*UPLOAD_DROP_STATES):
            # a job that ended while the previous server was stopping
            self._drop_upload(job_id)
        for job_id in self.store.ids_in_state("done"):
            if not self.result_path(job_id).is_file():
                self.store.update(job_id, state="failed", error_code="result_missing",
                                  error_message="the result file of this job is missing from the server's state folder")

    # ------------------------------------------------------------------ paths

    def result_path(self, job_id: str) -> Path:
        return self.config.results_dir / f"{job_id}.npz"

    def upload_dir(self, job_id: str) -> Path:
        return self.config.uploads_dir / job_id

    def remove_upload(self, job_id: str) -> None:
        """Remove the uploaded video of ``job_id`` (if any)."""
        _remove(self.upload_dir(job_id))

    def _drop_upload(self, job_id: str) -> None:
        """Remove an ended job's upload unless the server keeps uploads: the
        video is the user's, and the result no longer needs it."""
        if not self.config.keep_uploads:
            self.remove_upload(job_id)

    # ------------------------------------------------------------------ requests

    def submit(self, rec: JobRecord) -> None:
        with self._lock:
            self._cancel[rec.id] = threading.Event()
            self.store.insert(rec)
        self._queue.put(rec.id)

    def live(self, job_id: str) -> Optional[Live]:
        with self._lock:
            live = self._live.get(job_id)
            return None if live is None else Live(**vars(live))

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued job at once, or ask a running one to stop (it becomes
        ``cancelled`` within a frame or so).  False when the job is unknown."""
        with self._lock:
            rec = self.store.get(job_id)
            if rec is None:
                return False
            if rec.state == "queued":
                self.store.update(job_id, state="cancelled", stage="queued")
                self._drop_upload(job_id)
            ev = self._cancel.get(job_id)
            if ev is not None and rec.state in ("queued", "running"):
                ev.set()
        return True

    def delete(self, job_id: str) -> bool:
        """Cancel if active, forget the job and remove its files."""
        with self._lock:
            rec = self.store.get(job_id)
            if rec is None:
                return False
            ev = self._cancel.get(job_id)
            if ev is not None:
                ev.set()
            if rec.state in ("queued", "running"):
                self._deleted.add(job_id)  # the worker cleans up whatever it writes later
            self.store.delete(job_id)
        _remove(self.result_path(job_id))
        _remove(self.upload_dir(job_id))
        return True

    # ------------------------------------------------------------------ worker

    def _spawn(self):
        """Start one worker process; returns (process, parent end of its pipe)."""
        parent, child = self._mp.Pipe()
        threads = max(1, (os.cpu_count() or 1) // max(1, int(self.config.workers)))
        proc = self._mp.Process(target=child_main, args=(child, WORKER_NICE, threads),
                                name="lagc-job-process", daemon=True)
        proc.start()
        child.close()
        return proc, parent

    def _worker(self) -> None:
        # Started at once: the process imports torch / MediaPipe (niced) while
        # the server waits for its first job, so that job starts without delay.
        proc, conn = self._spawn()
        try:
            while True:
                job_id = self._queue.get()
                if job_id is None:
                    return
                if proc is None or not proc.is_alive():
                    proc, conn = self._spawn()
                try:
                    if not self._run_one(job_id, proc, conn):
                        proc = conn = None  # it died; the next job gets a fresh one
                except Exception:  # never let a worker thread die
                    log.exception("job %s: unexpected error in the worker", job_id)
        finally:
            if proc is not None:
                try:
                    conn.send(("stop",))
                except OSError:
                    pass
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)

    def _run_one(self, job_id: str, proc, conn) -> bool:
        """Run one job in ``proc``; False when the process died under it."""
        with self._lock:
            rec = self.store.get(job_id)
            ev = self._cancel.get(job_id)
            if rec is None or rec.state != "queued" or ev is None:
                self._cancel.pop(job_id, None)
                return True
            if self._stopping.is_set():
                return True  # stays queued in the DB -> interrupted on next start
            self._live[job_id] = live = Live(last_persist=time.monotonic())
            self.store.update(job_id, state="running", stage="decode")

        def on_progress(stage: str, done: int, total: int, fps: float) -> None:
            now = time.monotonic()
            with self._lock:
                changed = stage != live.stage
                live.stage, live.frames_done, live.frames_total = stage, max(0, done), max(0, total)
                live.fps = max(0.0, fps)
                persist = changed or now - live.last_persist >= PERSIST_INTERVAL_S
                if persist:
                    live.last_persist = now
                    snapshot = dict(stage=live.stage, frames_done=live.frames_done,
                                    frames_total=live.frames_total, fps=live.fps)
            if persist:
                self.store.update(job_id, **snapshot)

        alive = True
        final: dict
        try:
            final = self._drive(job_id, rec, proc, conn, ev, on_progress)
        except (EOFError, OSError):
            alive = False
            proc.join(1)
            log.error("job %s: the worker process died (exit code %s)", job_id, proc.exitcode)
            if self._stopping.is_set():
                final = dict(state="interrupted", error_code="interrupted", error_message=INTERRUPTED_MESSAGE)
            else:
                final = dict(state="failed", error_code="internal",
                             error_message=f"the worker process stopped unexpectedly (exit code {proc.exitcode}); "
                                           "the server is still running - resubmit the job, and report it if it "
                                           "happens again")
        with self._lock:
            self._live.pop(job_id, None)
            self._cancel.pop(job_id, None)
            if job_id in self._deleted:
                self._deleted.discard(job_id)
                _remove(self.result_path(job_id))
                return alive
            self.store.update(job_id, frames_done=live.frames_done, frames_total=live.frames_total,
                              fps=live.fps, **final)
            if final["state"] in UPLOAD_DROP_STATES:
                self._drop_upload(job_id)
        log.info("job %s: %s", job_id, final["state"])
        return alive


    def _drive(self, job_id: str, rec: JobRecord, proc, conn, ev: threading.Event, on_progress) -> dict:
        """Send the job to the worker process and relay its messages until it
        ends; returns the final store fields.  EOFError when the process dies."""
        t0 = time.monotonic()
        conn.send(("run", job_id, rec.source_path, rec.options, str(self.result_path(job_id))))
        cancel_sent = False
        while True:
            if ev.is_set() and not cancel_sent:
                conn.send(("cancel",))
                cancel_sent = True
            if not conn.poll(POLL_S):
                if not proc.is_alive():
                    raise EOFError
                continue
            msg = conn.recv()
            kind = msg[0]
            if kind == "progress":
                on_progress(*msg[1:])
            elif kind == "done":
                summary = msg[1]
                summary.setdefault("frames", msg[2])
                summary.setdefault("seconds", round(time.monotonic() - t0, 3))
                return dict(state="done", stage="done", summary=summary, error_code=None, error_message=None)
            elif kind == "cancelled":
                if self._stopping.is_set() and job_id not in self._deleted:
                    return dict(state="interrupted", error_code="interrupted", error_message=INTERRUPTED_MESSAGE)
                return dict(state="cancelled", error_code=None, error_message=None)
            elif kind == "error":
                if len(msg) > 3:
                    log.error("job %s failed with an unexpected error:\n%s", job_id, msg[3])
                return dict(state="failed", error_code=msg[1], error_message=msg[2])
            # "ready" and anything else: keep waiting


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
