"""What the routes share: turning requests into job records (option checks,
video probe, availability) and records into :class:`Job` answers."""
from __future__ import annotations

import functools
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional

from lagc_hand.engines import check_engine
from lagc_hand.errors import EngineUnavailable
from lagc_hand.options import PATH_OPTIONS
from lagc_hand.server.config import ServerConfig
from lagc_hand.server.errors import ApiError
from lagc_hand.server.jobs import JobManager
from lagc_hand.server.models import Job, OptionsModel
from lagc_hand.server.probe import ProbeError, frames_to_process, probe_video
from lagc_hand.server.security import resolve_allowed_path
from lagc_hand.server.store import JobRecord, JobStore, now_iso


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """Whether this torch build sees a CUDA device (imported on first need only:
    the HTTP process does not load torch otherwise)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def check_available(engine: str, checkpoint: Optional[str], device: str) -> None:
    """Refuse, before anything is queued, options this installation cannot run:
    a CUDA device on a build or machine without one (422 ``device_unavailable``),
    an engine that is missing or lacks its checkpoint (422 ``engine_unavailable``).
    Without this the job would be accepted and fail minutes later."""
    try:
        check_engine(engine, checkpoint)
    except EngineUnavailable as exc:
        raise ApiError(422, "engine_unavailable", str(exc)) from None
    if device == "cuda" and not cuda_available():
        raise ApiError(422, "device_unavailable",
                       "device 'cuda' was asked for, but this server's torch has no usable CUDA device "
                       "(CPU-only build or no GPU); use device 'cpu' or 'auto'")


class JobService:
    """The server's state as the routes see it (config, store, job manager)."""

    def __init__(self, config: ServerConfig, store: JobStore, manager: JobManager):
        self.config, self.store, self.manager = config, store, manager

    # ------------------------------------------------------------------ answers

    def job_view(self, rec: JobRecord) -> Job:
        live = self.manager.live(rec.id) if rec.state == "running" else None
        stage, done, total, fps = rec.stage, rec.frames_done, rec.frames_total, rec.fps
        if live is not None:
            stage, done, total, fps = live.stage, live.frames_done, live.frames_total, live.fps
        eta = None
        if rec.state == "running" and stage == "detect" and fps > 0 and total >= done:
            eta = round((total - done) / fps, 2)
        error = {"code": rec.error_code, "message": rec.error_message or ""} if rec.error_code else None
        return Job(
            id=rec.id, state=rec.state, stage=stage, frames_done=done, frames_total=total, fps=round(fps, 3),
            eta_s=eta, error=error, created=rec.created, updated=rec.updated, source=rec.source_name,
            options=rec.options, summary=rec.summary, resubmit_of=rec.resubmit_of,
        )

    def get_record(self, job_id: str) -> JobRecord:
        rec = self.store.get(job_id)
        if rec is None:
            raise ApiError(404, "not_found", f"no job with id {job_id}")
        return rec

    # ------------------------------------------------------------------ checks

    def check_option_paths(self, opts: OptionsModel) -> None:
        """Paths inside options are read by the server too: same rule as videos."""
        for name, value in ((n, getattr(opts, n)) for n in PATH_OPTIONS):
            if value is None or (name == "hand_model" and value == "open"):
                continue
            if resolve_allowed_path(value, self.config.allow_dirs) is None:
                raise ApiError(403, "path_not_allowed",
                               f"options.{name}: {value!r} is not inside a folder this server may read "
                               f"(start it with --allow-dir)")

    def effective_options(self, opts: OptionsModel) -> dict[str, Any]:
        d = opts.model_dump()
        if "device" not in opts.model_fields_set:
            d["device"] = self.config.device
        if "detect_workers" not in opts.model_fields_set and self.config.workers > 1:
            # Jobs already run side by side: share the cores instead of each taking all of them.
            from lagc_hand.engines.parallel import available_cores

            d["detect_workers"] = max(1, available_cores() // self.config.workers)
        return d

    def admit_options(self, opts: OptionsModel) -> dict[str, Any]:
        """Checked options -> the options dict stored with the job."""
        self.check_option_paths(opts)
        options = self.effective_options(opts)
        check_available(options["engine"], options.get("checkpoint"), options["device"])
        return options

    def check_video(self, path: Path, opts: dict[str, Any], name: Optional[str] = None) -> None:
        """Probe; refuse unreadable, too long or too large videos before queueing."""
        cfg = self.config
        try:
            info = probe_video(path, count_limit=opts["frame_start"] + cfg.max_frames * opts["stride"], name=name)
        except ProbeError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        if info.width > cfg.max_width or info.height > cfg.max_height:
            raise ApiError(413, "too_large", f"the video is {info.width}x{info.height}; this server accepts at most "
                                             f"{cfg.max_width}x{cfg.max_height} (--max-resolution)")
        n = frames_to_process(info.frame_count, opts["frame_start"], opts["frame_end"], opts["stride"])
        if n == 0:
            raise ApiError(422, "invalid_request", f"the video has {info.frame_count} frames; frame_start="
                                                   f"{opts['frame_start']} leaves none to process")
        if n > cfg.max_frames:
            raise ApiError(413, "too_large", f"the job would process {n} frames; the limit is {cfg.max_frames} "
                                             "(--max-frames); use frame_start/frame_end or a larger stride")

    # ------------------------------------------------------------------ jobs

    def submit(self, job_id: str, source_name: str, kind: str, source_path: Path, options: dict,
               resubmit_of: Optional[str] = None) -> Job:
        t = now_iso()
        rec = JobRecord(id=job_id, state="queued", stage="queued", frames_done=0, frames_total=0, fps=0.0,
                        error_code=None, error_message=None, created=t, updated=t, source_name=source_name,
                        source_kind=kind, source_path=str(source_path), options=options, resubmit_of=resubmit_of)
        self.manager.submit(rec)
        return self.job_view(rec)

    def resubmit(self, old: JobRecord) -> Job:
        """A new job with ``old``'s source and options (``resubmit_of`` = old id)."""
        if old.state in ("queued", "running"):
            raise ApiError(409, "conflict", f"job {old.id} is still {old.state}; cancel it first")
        check_available(old.options["engine"], old.options.get("checkpoint"), old.options["device"])
        new_id = uuid.uuid4().hex
        if old.source_kind == "path":
            real = resolve_allowed_path(old.source_path, self.config.allow_dirs)
            if real is None:
                raise ApiError(403, "path_not_allowed", f"{old.source_path!r} is no longer inside an allowed folder")
            if not real.is_file():
                raise ApiError(404, "not_found", f"{old.source_path}: the source video is gone")
            self.check_video(real, old.options)
            return self.submit(new_id, old.source_name, "path", real, old.options, resubmit_of=old.id)
        return self._resubmit_upload(old, new_id)

    def _resubmit_upload(self, old: JobRecord, new_id: str) -> Job:
        src = Path(old.source_path)
        if not src.is_file():
            raise ApiError(404, "not_found", "the uploaded video of this job is gone (uploads are removed when a "
                                             "job ends unless the server runs with --keep-uploads); upload it again")
        folder = self.manager.upload_dir(new_id)
        folder.mkdir(mode=0o700, parents=True)
        try:
            dst = folder / src.name
            try:
                os.link(src, dst)  # same file system: no copy needed
            except OSError:
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o600)
            self.check_video(dst, old.options, old.source_name)
            job = self.submit(new_id, old.source_name, "upload", dst, old.options, resubmit_of=old.id)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if not self.config.keep_uploads:
            # The video lives on in the new job's folder; the old copy would only linger.
            self.manager.remove_upload(old.id)
        return job
