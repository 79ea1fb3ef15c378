"""``GET /api/v1/jobs/{id}/result``: the HandMotion .npz of a done job."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from lagc_hand.server.errors import ApiError, err
from lagc_hand.server.routers import API, JobId
from lagc_hand.server.service import JobService
from lagc_hand.server.store import JobRecord

_FILE = {200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
               "description": "HandMotion file"}}


def no_result(rec: JobRecord) -> ApiError:
    """Why a job that is not ``done`` has no result, in its own words: a job that
    ended without one must not read like one that is still coming."""
    if rec.state in ("queued", "running"):
        return ApiError(409, "not_ready", f"job {rec.id} is {rec.state}; the result exists once it is done")
    if rec.state == "cancelled":
        return ApiError(409, "job_cancelled", f"job {rec.id} was cancelled, so it has no result; "
                                              "resubmit it (POST /api/v1/jobs/{id}/resubmit) to run it again")
    why = f": {rec.error_message}" if rec.error_message else ""
    if rec.state == "interrupted":
        return ApiError(409, "job_interrupted", f"job {rec.id} was interrupted and has no result{why}")
    return ApiError(409, "job_failed", f"job {rec.id} failed ({rec.error_code or 'failed'}), so it has no result{why}")


def router(svc: JobService, auth: list) -> APIRouter:
    r = APIRouter(tags=["jobs"], dependencies=auth)

    @r.get(f"{API}/jobs/{{job_id}}/result", response_class=FileResponse, responses={**_FILE, **err(404, 409, 422)},
           summary="the HandMotion .npz of a done job")
    def get_result(job_id: str = JobId):
        rec = svc.get_record(job_id)
        if rec.state != "done":
            raise no_result(rec)
        path = svc.manager.result_path(job_id)
        if not path.is_file():
            raise ApiError(404, "not_found", f"the result file of job {job_id} is missing")
        stem = Path(rec.source_name).stem or "video"
        return FileResponse(path, media_type="application/octet-stream", filename=f"{stem}_motion.npz")

    return r
