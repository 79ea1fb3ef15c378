"""The reconstruction job state machine, in plain Python (no ``bpy``).

A :class:`JobRunner` submits a video to the backend, polls it, fetches and
validates the HandMotion result and writes it to disk, all on a worker thread
(network I/O only, never ``bpy``).  The main thread reads :meth:`JobRunner.status`
from a timer or modal operator and applies the result there; headless code and
tests call :meth:`JobRunner.wait`.

States: ``submitting -> queued/running -> fetching -> done``; any state may end
in ``failed`` (message for the user) or ``cancelled``.  While the backend is
not reachable (a restart, a crash) the runner is ``reconnecting``: it retries
with back-off for up to ``reconnect_s`` seconds and then continues with the
same job id; a job the restarted server reports ``interrupted`` ends ``failed``
with ``job_state == "interrupted"``, ready to be resubmitted.  A runner made
with ``job_id=`` attaches to an existing job instead of submitting a video.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace

from .client import BackendUnavailable, Client, ClientError
from .core.atomic import write_atomic
from .core.handmotion import HandMotionError, loads
from .core.names import result_file_name

FINAL_STATES = ("done", "failed", "cancelled")
#: Server states after which the job can be resubmitted.
RESUBMITTABLE = ("failed", "interrupted", "cancelled")
#: How long a job's runner keeps retrying an unreachable backend, seconds.
RECONNECT_S = 60.0
#: Longest pause between two retries, seconds.
MAX_RETRY_DELAY_S = 8.0


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
    job_state: str = ""  # the server's last word on the job ("interrupted", ...)

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
        if self.state in ("failed", "cancelled", "done", "reconnecting"):
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
    job_id:        attach to this existing job instead of submitting ``video_path``
                   (which then only names the result).
    reconnect_s:   how long an unreachable backend is retried before giving up.
    """

    def __init__(self, client: Client, video_path: str, options: dict | None, result_dir: str,
                 poll_interval: float = 0.5, job_id: str | None = None, reconnect_s: float = RECONNECT_S):
        self.client = client
        self.video_path = video_path
        self.attach_id = job_id
        self.reconnect_s = reconnect_s
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
        if self.attach_id:
            job_id = self.attach_id
            self._set(job_id=job_id, state="queued", message="")
            job = self._retrying(lambda: self.client.job(job_id))
        else:
            if not os.path.isfile(self.video_path):
                raise ClientError(f"The video {self.video_path} does not exist")
            job = self.client.submit(self.video_path, self.options)
            job_id = job["id"]
            self._set(job_id=job_id)
        while True:
            if self._cancel.is_set():
                self._cancel_on_server(job_id)
                return
            if job is not None:
                self._update(job)
                if self._ended(job, job_id):
                    return
            self._cancel.wait(self.poll_interval)
            if not self._cancel.is_set():
                job = self._retrying(lambda: self.client.job(job_id))

    def _ended(self, job: dict, job_id: str) -> bool:
        """Act on a finished job; False while it is still queued or running."""
        state = job.get("state")
        self._set(job_state=str(state or ""))
        if state == "done":
            self._fetch(job_id)
        elif state in ("failed", "interrupted"):
            err = job.get("error") or {}
            msg = err.get("message") or f"the job ended '{state}'"
            if state == "interrupted":
                msg = (f"the backend stopped during job {job_id[:8]} (interrupted); "
                       "Resubmit runs it again with the same video and options")
            self._set(state="failed", message=f"Reconstruction failed: {msg}")
        elif state == "cancelled":
            self._set(state="cancelled", message="Cancelled on the server")
        else:
            return False
        return True

    def _cancel_on_server(self, job_id: str) -> None:
        try:
            self.client.cancel(job_id)
            self._set(state="cancelled", message="Cancelled")
        except BackendUnavailable:
            self._set(state="cancelled", message="Cancelled here; the backend was not reachable to cancel "
                                                 f"job {job_id[:8]} there")

    def _retrying(self, call):
        """``call()``, retried with back-off while the backend is unreachable, for at
        most ``reconnect_s`` seconds; ``None`` when cancelled meanwhile."""
        start = time.monotonic()
        delay = min(0.5, max(self.poll_interval, 0.05))
        resume_state = self._status.state
        while True:
            try:
                result = call()
            except BackendUnavailable as exc:
                waited = time.monotonic() - start
                if waited >= self.reconnect_s:
                    job = self._status.job_id
                    raise BackendUnavailable(
                        f"{exc} Gave up after {self.reconnect_s:.0f} s"
                        + (f"; job {job[:8]} may still finish: Re-attach to it (Recent jobs)" if job else "")
                    ) from None
                self._set(state="reconnecting",
                          message=f"Backend not reachable; retrying ({waited:.0f} of {self.reconnect_s:.0f} s)")
                if self._cancel.wait(min(delay, self.reconnect_s - waited)):
                    return None
                delay = min(delay * 2.0, MAX_RETRY_DELAY_S)
                continue
            if self._status.state == "reconnecting":
                self._set(state=resume_state, message="")
            return result

    def _update(self, job: dict) -> None:
        state = job.get("state", "running")
        self._set(state=state if state in ("queued", "running") else self._status.state,
                  stage=str(job.get("stage") or ""),
                  frames_done=int(job.get("frames_done") or 0),
                  frames_total=int(job.get("frames_total") or 0),
                  fps=float(job.get("fps") or 0.0), message="")

    def _fetch(self, job_id: str) -> None:
        self._set(state="fetching", stage="download", message="Downloading the result")
        data = self._retrying(lambda: self.client.result(job_id))
        if data is None:  # cancelled while the backend was away: the job itself is done
            self._set(state="cancelled", message="Cancelled before the result was downloaded")
            return
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


def recent_jobs(client: Client, limit: int = 10) -> list[dict]:
    """The backend's newest ``limit`` jobs as ``{"id", "source", "state", "created"}``
    (for the panel's list to import results from, re-attach or resubmit)."""
    jobs = client.jobs()[:limit]
    return [{"id": str(j.get("id", "")), "source": str(j.get("source") or ""), "state": str(j.get("state") or ""),
             "created": str(j.get("created") or "")} for j in jobs if j.get("id")]
