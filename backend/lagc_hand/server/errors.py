"""Error answers of the server: one JSON shape ``{"error": {"code", "message"}}``
for every 4xx/5xx, and the exception handlers that produce it."""
from __future__ import annotations

import json
from typing import Any, Optional

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lagc_hand.server.models import ErrorResponse


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code``, user ``message``."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def err(*statuses: int) -> dict[int, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses (401/403 always: token)."""
    return {s: {"model": ErrorResponse} for s in (401, 403, *statuses)}


def install_handlers(app: FastAPI, routers: list[APIRouter]) -> None:
    """Give every error raised inside ``app`` the common JSON shape.  ``routers``
    are those included in ``app`` (without prefixes): 405 answers list the
    methods of their routes."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", describe_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(routers, request))
        return error_response(exc.status_code, code, str(exc.detail), headers or None)


def _allowed_methods(routers: list[APIRouter], request: Request) -> list[str]:
    """Every method of the request's path.  Starlette names only those of the
    first route with this path; FastAPI makes one route per method, so collect
    them all.  A literal path (/jobs/from-path) wins over a template (/jobs/{job_id})."""
    routes = [r for rt in routers for r in rt.routes if r.matches(request.scope)[0] == Match.PARTIAL]
    literal = [r for r in routes if "{" not in getattr(r, "path", "{")]
    return sorted({m for r in (literal or routes) for m in (getattr(r, "methods", None) or ())})


def parse_options(text: Optional[str], model):
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
        raise ApiError(422, "invalid_request", describe_validation(exc.errors(), prefix="options")) from None


def describe_validation(errors, prefix: str = "") -> str:
    """Pydantic error list -> one readable line per problem."""
    lines = []
    for e in errors[:10]:
        if e.get("type") == "json_invalid":
            # FastAPI reports a broken JSON body as loc ("body", <offset>), msg
            # "JSON decode error": say what it is and where, in words.
            pos = next((p for p in e.get("loc", ()) if isinstance(p, int)), None)
            detail = (e.get("ctx") or {}).get("error") or "not valid JSON"
            where = f" at character {pos}" if pos is not None else ""
            lines.append(f"the request body is not valid JSON ({detail}{where}); send a JSON object")
            continue
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        where = ".".join(([prefix] if prefix else []) + loc) or "request"
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{where}: {msg}")
    return "; ".join(lines) or "invalid request"
