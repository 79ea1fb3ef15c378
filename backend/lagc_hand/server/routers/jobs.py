"""Jobs: submit by path, list, state, cancel, resubmit, delete."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from fastapi.responses import Response

from lagc_hand.server.errors import ApiError, err
from lagc_hand.server.models import FromPathRequest, Job, JobList
from lagc_hand.server.routers import API, JobId
from lagc_hand.server.security import resolve_allowed_path
from lagc_hand.server.service import JobService


def router(svc: JobService, auth: list) -> APIRouter:
    r = APIRouter(tags=["jobs"], dependencies=auth)
    cfg = svc.config

    @r.post(f"{API}/jobs/from-path", response_model=Job, status_code=201, responses=err(400, 404, 413, 415, 422),
            summary="submit a video the server reads from disk (under --allow-dir)")
    def submit_path(body: FromPathRequest) -> Job:
        real = resolve_allowed_path(body.path, cfg.allow_dirs)
        if real is None:
            raise ApiError(403, "path_not_allowed",
                           f"{body.path!r} is not inside a folder this server may read; allowed: "
                           f"{[str(d) for d in cfg.allow_dirs] or 'none (start the server with --allow-dir DIR)'}")
        if not real.exists():
            raise ApiError(404, "not_found", f"{body.path}: no such file")
        if not real.is_file():
            raise ApiError(422, "invalid_video", f"{body.path}: not a regular file")
        options = svc.admit_options(body.options)
        svc.check_video(real, options)
        return svc.submit(uuid.uuid4().hex, real.name, "path", real, options)

    @r.get(f"{API}/jobs", response_model=JobList, responses=err(422), summary="all jobs, newest first")
    async def list_jobs(limit: int = Query(100, ge=1, le=1000)) -> JobList:
        return JobList(jobs=[svc.job_view(rec) for rec in svc.store.list(limit)])

    @r.get(f"{API}/jobs/{{job_id}}", response_model=Job, responses=err(404, 422),
           summary="one job's state and progress")
    async def get_job(job_id: str = JobId) -> Job:
        # async on purpose: a primary-key read plus an in-memory overlay takes
        # microseconds; a thread-pool hop would cost more than the work.
        return svc.job_view(svc.get_record(job_id))

    @r.post(f"{API}/jobs/{{job_id}}/cancel", response_model=Job, responses=err(404, 422),
            summary="cancel a queued or running job (no-op on finished jobs)")
    def cancel_job(job_id: str = JobId) -> Job:
        if not svc.manager.cancel(job_id):
            raise ApiError(404, "not_found", f"no job with id {job_id}")
        return svc.job_view(svc.get_record(job_id))

    @r.post(f"{API}/jobs/{{job_id}}/resubmit", response_model=Job, status_code=201,
            responses=err(404, 409, 413, 415, 422),
            summary="a new job with the same source and options (for interrupted, failed or cancelled jobs)")
    def resubmit_job(job_id: str = JobId) -> Job:
        return svc.resubmit(svc.get_record(job_id))

    @r.delete(f"{API}/jobs/{{job_id}}", status_code=204, responses=err(404, 422), response_class=Response,
              summary="cancel if active, remove job and files")
    def delete_job(job_id: str = JobId) -> Response:
        if not svc.manager.delete(job_id):
            raise ApiError(404, "not_found", f"no job with id {job_id}")
        return Response(status_code=204)

    return r
