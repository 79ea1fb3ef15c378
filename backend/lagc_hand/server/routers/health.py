"""``GET /api/v1/health`` (no token) and ``GET /openapi.json`` (token)."""
from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from lagc_hand import __version__
from lagc_hand.server import frames as frames_mod
from lagc_hand.server.models import Health
from lagc_hand.server.routers import API


def router(app: FastAPI, auth: list) -> APIRouter:
    r = APIRouter()

    @r.get(f"{API}/health", response_model=Health, tags=["server"], summary="liveness (no token needed)")
    async def health() -> Health:
        return Health(version=__version__, engines=frames_mod.available_engines())

    @r.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return r
