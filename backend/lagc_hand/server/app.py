"""The FastAPI application of the local server (contract: ``docs/http-api.md``).

Layers, outermost first:

1. :class:`GuardMiddleware` (pure ASGI): refuses a non-loopback ``Host`` or a
   foreign ``Origin`` before any routing, and turns any exception that escapes
   the app into a 500 JSON answer with a logged traceback (the server lives on).
2. Routes; all but ``/api/v1/health`` depend on :func:`require_token`.
3. Exception handlers that give every error the same JSON shape
   ``{"error": {"code", "message"}}``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

from fastapi import Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lagc_hand import __version__
from lagc_hand.options import PATH_OPTIONS
from lagc_hand.server import frames as frames_mod
from lagc_hand.server.config import ServerConfig
from lagc_hand.server.jobs import JobManager
from lagc_hand.server.models import (
    ErrorResponse,
    FramesOptions,
    FramesResponse,
    FromPathRequest,
    Health,
    Job,
    JobList,
    OptionsModel,
)
from lagc_hand.server.probe import ProbeError, frames_to_process, probe_video
from lagc_hand.server.security import host_allowed, load_or_create_token, origin_allowed, resolve_allowed_path, token_matches
from lagc_hand.server.store import JobRecord, JobStore, now_iso
from lagc_hand.server.uploads import UploadError, read_multipart

log = logging.getLogger("lagc_hand.server")

API = "/api/v1"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code``, user ``message``."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _err(*statuses: int) -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses."""
    return {s: {"model": ErrorResponse} for s in (401, 403, *statuses)}


# --------------------------------------------------------------------------- ASGI guard


class GuardMiddleware:
    """Host / Origin checks and the last line of defence against exceptions."""

    def __init__(self, app, config: ServerConfig):
        self.app = app
        self.port = config.port
        self.extra_hosts = () if config.is_loopback else (config.host,)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        refusal = None
        if not host_allowed(headers.get("host"), self.extra_hosts):
            refusal = "requests must be addressed to 127.0.0.1 or localhost (Host header refused)"
        elif not origin_allowed(headers.get("origin"), self.port):
            refusal = "requests from web pages are not allowed (Origin header refused)"
        if refusal:
            return await error_response(403, "forbidden", refusal)(scope, receive, send)

        started = False
        t0 = time.perf_counter()

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # W3C Server-Timing: time spent in the app, so clients and the load
                # bench can tell server work from network / scheduling delays.
                dur = f"app;dur={(time.perf_counter() - t0) * 1000:.3f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", dur)]}
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await error_response(500, "internal", "internal server error; see the server log")(scope, receive, send)


# --------------------------------------------------------------------------- app


def lock_state_dir(state_dir: Path):
    """Hold an exclusive lock on ``state_dir`` for the life of the process, so two
    servers never share (and mutually 'interrupt') one jobs database.  Returns
    the open lock file (keep a reference); raises InputError when taken."""
    from lagc_hand.errors import InputError

    f = open(state_dir / "server.lock", "a+")
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one server per state dir is on the user
        return f
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise InputError(f"another lagc-hand server is already using the state folder {state_dir}; stop it, "
                         "or give this one its own --state-dir") from None
    return f


def create_app(config: ServerConfig) -> FastAPI:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    state_lock = lock_state_dir(config.state_dir)
    token = load_or_create_token(config.token_file)
    store = JobStore(config.db_path)
    manager = JobManager(config, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        manager.start()
        log.info("LAGC-Hand server ready on http://%s:%d (state: %s)", config.host, config.port, config.state_dir)
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)
            store.close()

    app = FastAPI(
        title="LAGC-Hand local server",
        version=__version__,
        description="Local inference server for the LAGC-Hand Blender add-on. See docs/http-api.md.",
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config, app.state.manager, app.state.store = config, manager, store
    app.state.state_lock = state_lock
    app.add_middleware(GuardMiddleware, config=config)

    bearer = HTTPBearer(auto_error=False, description="the token from lagc_hand_blender.core.paths.token_file()")

    async def require_token(creds: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        # async: a sync dependency would cost a thread-pool hop on every request
        if creds is None or not creds.credentials:
            raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": "Bearer"})
        if not token_matches(creds.credentials, token):
            raise ApiError(403, "forbidden", "wrong token; read it from the server's token file")

    auth = [Depends(require_token)]

    # ------------------------------------------------------------------ errors

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", _describe_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route with this path;
            # FastAPI makes one route per method, so collect them all.
            # A literal path (/jobs/from-path) wins over a template (/jobs/{job_id}).
            routes = [r for r in app.router.routes if r.matches(request.scope)[0] == Match.PARTIAL]
            literal = [r for r in routes if "{" not in getattr(r, "path", "{")]
            allowed = sorted({m for r in (literal or routes) for m in (getattr(r, "methods", None) or ())})
            headers["Allow"] = ", ".join(allowed)
        return error_response(exc.status_code, code, str(exc.detail), headers or None)

    # ------------------------------------------------------------------ helpers

    def job_view(rec: JobRecord) -> Job:
        live = manager.live(rec.id) if rec.state == "running" else None
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

    def get_record(job_id: str) -> JobRecord:
        rec = store.get(job_id)
        if rec is None:
            raise ApiError(404, "not_found", f"no job with id {job_id}")
        return rec

    def check_option_paths(opts: OptionsModel) -> None:
        """Paths inside options are read by the server too: same rule as videos."""
        for name, value in ((n, getattr(opts, n)) for n in PATH_OPTIONS):
            if value is None or (name == "hand_model" and value == "open"):
                continue
            if resolve_allowed_path(value, config.allow_dirs) is None:
                raise ApiError(403, "path_not_allowed",
                               f"options.{name}: {value!r} is not inside a folder this server may read "
                               f"(start it with --allow-dir)")

    def effective_options(opts: OptionsModel) -> dict[str, Any]:
        d = opts.model_dump()
        if "device" not in opts.model_fields_set:
            d["device"] = config.device
        if "detect_workers" not in opts.model_fields_set and config.workers > 1:
            # Jobs already run side by side: share the cores instead of each taking all of them.
            from lagc_hand.engines.parallel import available_cores

            d["detect_workers"] = max(1, available_cores() // config.workers)
        return d

    def check_video(path: Path, opts: dict[str, Any], name: Optional[str] = None) -> None:
        """Probe; refuse unreadable, too long or too large videos before queueing."""
        try:
            info = probe_video(path, count_limit=opts["frame_start"] + config.max_frames * opts["stride"], name=name)
        except ProbeError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        if info.width > config.max_width or info.height > config.max_height:
            raise ApiError(413, "too_large", f"the video is {info.width}x{info.height}; this server accepts at most "
                                             f"{config.max_width}x{config.max_height} (--max-resolution)")
        n = frames_to_process(info.frame_count, opts["frame_start"], opts["frame_end"], opts["stride"])
        if n == 0:
            raise ApiError(422, "invalid_request", f"the video has {info.frame_count} frames; frame_start="
                                                   f"{opts['frame_start']} leaves none to process")
        if n > config.max_frames:
            raise ApiError(413, "too_large", f"the job would process {n} frames; the limit is {config.max_frames} "
                                             "(--max-frames); use frame_start/frame_end or a larger stride")

    def new_record(job_id: str, source_name: str, kind: str, source_path: Path, options: dict, resubmit_of=None) -> JobRecord:
        t = now_iso()
        return JobRecord(id=job_id, state="queued", stage="queued", frames_done=0, frames_total=0, fps=0.0,
                         error_code=None, error_message=None, created=t, updated=t, source_name=source_name,
                         source_kind=kind, source_path=str(source_path), options=options, resubmit_of=resubmit_of)

    # ------------------------------------------------------------------ routes

    @app.get(f"{API}/health", response_model=Health, tags=["server"], summary="liveness (no token needed)")
    async def health() -> Health:
        return Health(version=__version__, engines=frames_mod.available_engines())

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.post(
        f"{API}/jobs", response_model=Job, status_code=201, tags=["jobs"], dependencies=auth,
        summary="submit a video by upload (multipart: file, options)",
        responses=_err(400, 413, 415, 422),
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": "the video"},
                "options": {"type": "string", "description": "JSON object of ReconstructOptions fields"},
            }}}}}},
    )
    async def submit_upload(request: Request) -> Job:
        job_id = uuid.uuid4().hex
        folder = manager.upload_dir(job_id)
        folder.mkdir(parents=True)
        try:
            try:
                form = await read_multipart(request, max_body=config.max_upload_bytes, file_fields=("file",),
                                            text_fields=("options",), dest_dir=folder, what="upload")
            except UploadError as exc:
                raise ApiError(exc.status, exc.code, exc.message, {"Connection": "close"} if exc.close else None)
            if not form.files:
                raise ApiError(422, "invalid_request", "no 'file' part in the upload")
            opts = _parse_options(form.fields.get("options"), OptionsModel)
            check_option_paths(opts)
            options = effective_options(opts)
            part = form.files[0]
            name = os.path.basename(part.filename.replace("\\", "/")) or "video"
            await run_in_threadpool(check_video, part.path, options, name)
            rec = new_record(job_id, name, "upload", part.path, options)
            manager.submit(rec)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job_view(rec)

    @app.post(f"{API}/jobs/from-path", response_model=Job, status_code=201, tags=["jobs"], dependencies=auth,
              summary="submit a video the server reads from disk (under --allow-dir)",
              responses=_err(400, 404, 413, 415, 422))
    def submit_path(body: FromPathRequest) -> Job:
        real = resolve_allowed_path(body.path, config.allow_dirs)
        if real is None:
            raise ApiError(403, "path_not_allowed",
                           f"{body.path!r} is not inside a folder this server may read; allowed: "
                           f"{[str(d) for d in config.allow_dirs] or 'none (start the server with --allow-dir DIR)'}")
        if not real.exists():
            raise ApiError(404, "not_found", f"{body.path}: no such file")
        if not real.is_file():
            raise ApiError(422, "invalid_video", f"{body.path}: not a regular file")
        check_option_paths(body.options)
        options = effective_options(body.options)
        check_video(real, options)
        rec = new_record(uuid.uuid4().hex, real.name, "path", real, options)
        manager.submit(rec)
        return job_view(rec)

    @app.get(f"{API}/jobs", response_model=JobList, tags=["jobs"], dependencies=auth, responses=_err(422),
             summary="all jobs, newest first")
    async def list_jobs(limit: int = Query(100, ge=1, le=1000)) -> JobList:
        return JobList(jobs=[job_view(r) for r in store.list(limit)])

    JobId = PathParam(..., description="job id (32 hex digits)", max_length=64)

    @app.get(f"{API}/jobs/{{job_id}}", response_model=Job, tags=["jobs"], dependencies=auth,
             responses=_err(404, 422), summary="one job's state and progress")
    async def get_job(job_id: str = JobId) -> Job:
        # async on purpose: a primary-key read plus an in-memory overlay takes
        # microseconds; a thread-pool hop would cost more than the work.
        return job_view(get_record(job_id))

    @app.post(f"{API}/jobs/{{job_id}}/cancel", response_model=Job, tags=["jobs"], dependencies=auth,
              responses=_err(404, 422), summary="cancel a queued or running job (no-op on finished jobs)")
    def cancel_job(job_id: str = JobId) -> Job:
        if not manager.cancel(job_id):
            raise ApiError(404, "not_found", f"no job with id {job_id}")
        return job_view(get_record(job_id))

    @app.post(f"{API}/jobs/{{job_id}}/resubmit", response_model=Job, status_code=201, tags=["jobs"],
              dependencies=auth, responses=_err(404, 409, 413, 415, 422),
              summary="a new job with the same source and options (for interrupted, failed or cancelled jobs)")
    def resubmit_job(job_id: str = JobId) -> Job:
        old = get_record(job_id)
        if old.state in ("queued", "running"):
            raise ApiError(409, "conflict", f"job {job_id} is still {old.state}; cancel it first")
        new_id = uuid.uuid4().hex
        if old.source_kind == "path":
            real = resolve_allowed_path(old.source_path, config.allow_dirs)
            if real is None:
                raise ApiError(403, "path_not_allowed", f"{old.source_path!r} is no longer inside an allowed folder")
            if not real.is_file():
                raise ApiError(404, "not_found", f"{old.source_path}: the source video is gone")
            check_video(real, old.options)
            rec = new_record(new_id, old.source_name, "path", real, old.options, resubmit_of=job_id)
        else:
            src = Path(old.source_path)
            if not src.is_file():
                raise ApiError(404, "not_found", "the uploaded video of this job is gone; upload it again")
            folder = manager.upload_dir(new_id)
            folder.mkdir(parents=True)
            try:
                dst = folder / src.name
                try:
                    os.link(src, dst)  # same file system: no copy needed
                except OSError:
                    shutil.copyfile(src, dst)
                check_video(dst, old.options, old.source_name)
                rec = new_record(new_id, old.source_name, "upload", dst, old.options, resubmit_of=job_id)
                manager.submit(rec)
                return job_view(rec)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        manager.submit(rec)
        return job_view(rec)

    @app.get(f"{API}/jobs/{{job_id}}/result", tags=["jobs"], dependencies=auth, response_class=FileResponse,
             summary="the HandMotion .npz of a done job",
             responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "HandMotion file"}, **_err(404, 409, 422)})
    def get_result(job_id: str = JobId):
        rec = get_record(job_id)
        if rec.state != "done":
            raise ApiError(409, "not_ready", f"job {job_id} is {rec.state}; the result exists once it is done")
        path = manager.result_path(job_id)
        if not path.is_file():
            raise ApiError(404, "not_found", f"the result file of job {job_id} is missing")
        stem = Path(rec.source_name).stem or "video"
        return FileResponse(path, media_type="application/octet-stream", filename=f"{stem}_motion.npz")

    @app.delete(f"{API}/jobs/{{job_id}}", status_code=204, tags=["jobs"], dependencies=auth,
                responses=_err(404, 422), response_class=Response, summary="cancel if active, remove job and files")
    def delete_job(job_id: str = JobId) -> Response:
        if not manager.delete(job_id):
            raise ApiError(404, "not_found", f"no job with id {job_id}")
        return Response(status_code=204)

    @app.post(
        f"{API}/infer/frames", response_model=FramesResponse, tags=["inference"], dependencies=auth,
        summary="synchronous per-frame observations for a few JPEG/PNG images",
        responses=_err(400, 413, 415, 422),
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "1..N JPEG or PNG images, consecutive frames"},
                "options": {"type": "string", "description": "JSON object: engine, checkpoint, fps, device"},
            }}}}}},
    )
    async def infer_frames(request: Request) -> FramesResponse:
        try:
            form = await read_multipart(request, max_body=config.max_infer_bytes, file_fields=("files",),
                                        text_fields=("options",), dest_dir=None,
                                        max_files=config.max_infer_frames, what="frame batch")
        except UploadError as exc:
            raise ApiError(exc.status, exc.code, exc.message, {"Connection": "close"} if exc.close else None)
        if not form.files:
            raise ApiError(422, "invalid_request", "no 'files' parts in the request")
        opts = _parse_options(form.fields.get("options"), FramesOptions)
        if opts.checkpoint is not None and resolve_allowed_path(opts.checkpoint, config.allow_dirs) is None:
            raise ApiError(403, "path_not_allowed", f"options.checkpoint: {opts.checkpoint!r} is not inside an allowed folder")
        try:
            images = [frames_mod.decode_image(bytes(p.data or b""), p.filename or f"#{i}", config.max_width, config.max_height)
                      for i, p in enumerate(form.files)]
        except frames_mod.ImageError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        device = opts.device if "device" in opts.model_fields_set else config.device
        try:
            return await run_in_threadpool(frames_mod.infer, images, opts, device)
        except frames_mod.ImageError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None

    return app


def _parse_options(text: Optional[str], model):
    """Options sent as a JSON string in a form field -> validated ``model``."""
    if text is None or not text.strip():
        return model()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_request", f"options: not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "options: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _describe_validation(exc.errors(), prefix="options")) from None


def _describe_validation(errors, prefix: str = "") -> str:
    """Pydantic error list -> one readable line per problem."""
    lines = []
    for e in errors[:10]:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        where = ".".join(([prefix] if prefix else []) + loc) or "request"
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{where}: {msg}")
    return "; ".join(lines) or "invalid request"
