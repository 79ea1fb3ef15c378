"""``POST /api/v1/infer/frames``: synchronous per-frame observations."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from lagc_hand.server import frames as frames_mod
from lagc_hand.server.errors import ApiError, err, parse_options
from lagc_hand.server.models import FramesOptions, FramesResponse
from lagc_hand.server.routers import API
from lagc_hand.server.security import resolve_allowed_path
from lagc_hand.server.service import JobService, check_available
from lagc_hand.server.uploads import UploadError, read_multipart

_FRAMES_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "1..N JPEG or PNG images, consecutive frames"},
        "options": {"type": "string", "description": "JSON object: engine, checkpoint, fps, device"},
    }}}}}}


def router(svc: JobService, auth: list) -> APIRouter:
    r = APIRouter(tags=["inference"], dependencies=auth)
    cfg = svc.config

    @r.post(f"{API}/infer/frames", response_model=FramesResponse, responses=err(400, 413, 415, 422),
            summary="synchronous per-frame observations for a few JPEG/PNG images", openapi_extra=_FRAMES_BODY)
    async def infer_frames(request: Request) -> FramesResponse:
        try:
            form = await read_multipart(request, max_body=cfg.max_infer_bytes, file_fields=("files",),
                                        text_fields=("options",), dest_dir=None,
                                        max_files=cfg.max_infer_frames, what="frame batch")
        except UploadError as exc:
            raise ApiError(exc.status, exc.code, exc.message, {"Connection": "close"} if exc.close else None)
        if not form.files:
            raise ApiError(422, "invalid_request", "no 'files' parts in the request")
        opts = parse_options(form.fields.get("options"), FramesOptions)
        if opts.checkpoint is not None and resolve_allowed_path(opts.checkpoint, cfg.allow_dirs) is None:
            raise ApiError(403, "path_not_allowed", f"options.checkpoint: {opts.checkpoint!r} is not inside an allowed folder")
        device = opts.device if "device" in opts.model_fields_set else cfg.device
        check_available(opts.engine, opts.checkpoint, device)
        try:
            images = [frames_mod.decode_image(bytes(p.data or b""), p.filename or f"#{i}", cfg.max_width, cfg.max_height)
                      for i, p in enumerate(form.files)]
            return await run_in_threadpool(frames_mod.infer, images, opts, device)
        except frames_mod.ImageError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None

    return r
