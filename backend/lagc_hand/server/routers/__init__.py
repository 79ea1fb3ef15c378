"""The server's routes, one router per resource: ``health`` (liveness, OpenAPI),
``uploads`` (submit by upload), ``jobs`` (submit by path, list, state, cancel,
resubmit, delete), ``results`` (the HandMotion file), ``infer`` (per-frame
observations).  Each module's ``router(svc, ...)`` builds its APIRouter around
the shared :class:`lagc_hand.server.service.JobService`."""
from __future__ import annotations

from typing import Optional

from fastapi import Depends, Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lagc_hand.server.errors import ApiError
from lagc_hand.server.security import token_matches

API = "/api/v1"

JobId = PathParam(..., description="job id (32 hex digits)", max_length=64)


def token_dependency(token: str) -> list:
    """``dependencies=`` entry that refuses requests without the bearer ``token``."""
    bearer = HTTPBearer(auto_error=False, description="the token from lagc_hand_blender.core.paths.token_file()")

    async def require_token(creds: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        # async: a sync dependency would cost a thread-pool hop on every request
        if creds is None or not creds.credentials:
            raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": "Bearer"})
        if not token_matches(creds.credentials, token):
            raise ApiError(403, "forbidden", "wrong token; read it from the server's token file")

    return [Depends(require_token)]
