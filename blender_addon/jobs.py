"""The reconstruction job state machine, in plain Python (no ``bpy``).

A :class:`JobRunner` submits a video to the backend, polls it, fetches and
validates the HandMotion result and writes it to disk, all on a worker thread
(network I/O only, never ``bpy``).  The main thread reads :meth:`JobRunner.status`
from a timer or modal operator and applies the result there; headless code and
tests call :meth:`JobRunner.wait`.

States: ``submitting -> queued/running -> fetching -> done``; any state may end
in ``failed`` (message for the user) or ``cancelled``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace

from .client import Client, ClientError
from .core.atomic import write_atomic
from .core.handmotion import HandMotionError, loads
from .core.names import result_file_name

FINAL_STATES = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class JobStatus:
    state: str = "idle"
    stage: str = ""
    frames_done: int = 0
    frames_total: int = 0
    fps: float = 0.0
    message: str = ""
    job_id: str | None = None
    result_path: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def progress(self) -> float:
        """Fraction in [0, 1] (detect-stage frames; 1 once done)."""
        if self.state == "done":
            return 1.0
        if self.frames_total > 0:
            return min(1.0, self.frames_done / self.frames_total)
        return 0.0

    def describe(self) -> str:
        """One line for the panel and the status bar."""
        if self.state in ("failed", "cancelled", "done"):
            return self.message or self.state.capitalize()
        text = self.state.capitalize()
        if self.stage:
            text += f": {self.stage}"
        if self.frames_total:
            text += f" {self.frames_done}/{self.frames_total}"
        if self.fps:
            text += f" ({self.fps:.1f} fps)"
        return text


def _write_atomic(path: str, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


class JobRunner:
    """One reconstruction job.

    client:        :class:`Client` of the backend.
    video_path:    the source video.
    options:       ``ReconstructOptions`` fields as a dict.
    result_dir:    where the HandMotion result is written.
    poll_interval: seconds between status requests.
    """

    def __init__(self, client: Client, video_path: str, options: dict | None, result_dir: str,
                 poll_interval: float = 0.5):
        self.client = client
        self.video_path = video_path
        self.options = dict(options or {})
        self.result_dir = result_dir
        self.poll_interval = poll_interval
        self._status = JobStatus()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- main thread API

    def start(self) -> "JobRunner":
        if self._thread is not None:
            raise RuntimeError("a JobRunner runs once")
        self._set(state="submitting", message="Submitting")
        self._thread = threading.Thread(target=self._run, name="lagc-hand-job", daemon=True)
        self._thread.start()
        return self

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def cancel(self) -> None:
        """Ask the worker to cancel the job on the server and stop."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> JobStatus:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status()

    # ----------------------------------------------------------- worker thread

    def _set(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _run(self) -> None:
        try:
            self._run_job()
        except ClientError as exc:
            self._set(state="failed", message=str(exc))
        except Exception as exc:  # a bug must still end the job, not hang the UI
            self._set(state="failed", message=f"Unexpected error: {type(exc).__name__}: {exc}")

    def _run_job(self) -> None:
        if not os.path.isfile(self.video_path):
            raise ClientError(f"The video {self.video_path} does not exist")
        job = self.client.submit(self.video_path, self.options)
        job_id = job["id"]
        self._set(job_id=job_id)
        while True:
            if self._cancel.is_set():
                try:
                    self.client.cancel(job_id)
                finally:
                    self._set(state="cancelled", message="Cancelled")
                return
            self._update(job)
            state = job.get("state")
            if state == "done":
                self._fetch(job_id)
                return
            if state in ("failed", "interrupted"):
                err = job.get("error") or {}
                msg = err.get("message") or f"the job ended '{state}'"
                self._set(state="failed", message=f"Reconstruction failed: {msg}")
                return
            if state == "cancelled":
                self._set(state="cancelled", message="Cancelled on the server")
                return
            self._cancel.wait(self.poll_interval)
            if not self._cancel.is_set():
                job = self.client.job(job_id)

    def _update(self, job: dict) -> None:
        state = job.get("state", "running")
        self._set(state=state if state in ("queued", "running") else self._status.state,
                  stage=str(job.get("stage") or ""),
                  frames_done=int(job.get("frames_done") or 0),
                  frames_total=int(job.get("frames_total") or 0),
                  fps=float(job.get("fps") or 0.0), message="")

    def _fetch(self, job_id: str) -> None:
        self._set(state="fetching", stage="download", message="Downloading the result")
        data = self.client.result(job_id)
        stem = os.path.splitext(os.path.basename(self.video_path))[0] or "video"
        try:
            loads(data, source=f"the backend's result for {stem}")
        except HandMotionError as exc:
            raise ClientError(f"The backend sent a damaged result: {exc}") from None
        path = os.path.join(self.result_dir, result_file_name(stem, job_id))
        try:
            _write_atomic(path, data)
        except OSError as exc:
            # The result is still on the backend: say so, and how to get it.
            raise ClientError(
                f"The result of job {job_id} could not be saved as {path}: {exc.strerror or exc}. "
                "It stays on the backend: fix the results folder (add-on preferences) and import it "
                "from the panel's Recent jobs.") from None
        self._set(state="done", result_path=path, message=f"Done: {os.path.basename(path)}")
