"""``POST /api/v1/jobs``: submit a video by upload (streamed multipart)."""
from __future__ import annotations

import os
import shutil
import uuid

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from lagc_hand.server.errors import ApiError, err, parse_options
from lagc_hand.server.models import Job, OptionsModel
from lagc_hand.server.routers import API
from lagc_hand.server.service import JobService
from lagc_hand.server.uploads import UploadError, read_multipart

_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the video"},
        "options": {"type": "string", "description": "JSON object of ReconstructOptions fields"},
    }}}}}}


def router(svc: JobService, auth: list) -> APIRouter:
    r = APIRouter(tags=["jobs"], dependencies=auth)

    @r.post(f"{API}/jobs", response_model=Job, status_code=201, responses=err(400, 413, 415, 422),
            summary="submit a video by upload (multipart: file, options)", openapi_extra=_UPLOAD_BODY)
    async def submit_upload(request: Request) -> Job:
        job_id = uuid.uuid4().hex
        folder = svc.manager.upload_dir(job_id)
        folder.mkdir(mode=0o700, parents=True)
        try:
            try:
                form = await read_multipart(request, max_body=svc.config.max_upload_bytes, file_fields=("file",),
                                            text_fields=("options",), dest_dir=folder, what="upload")
            except UploadError as exc:
                raise ApiError(exc.status, exc.code, exc.message, {"Connection": "close"} if exc.close else None)
            if not form.files:
                raise ApiError(422, "invalid_request", "no 'file' part in the upload")
            options = svc.admit_options(parse_options(form.fields.get("options"), OptionsModel))
            part = form.files[0]
            name = os.path.basename(part.filename.replace("\\", "/")) or "video"
            await run_in_threadpool(svc.check_video, part.path, options, name)
            return svc.submit(job_id, name, "upload", part.path, options)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    return r
