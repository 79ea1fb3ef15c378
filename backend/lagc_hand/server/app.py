"""The FastAPI application of the local server (contract: ``docs/http-api.md``).

Layers, outermost first:

1. :class:`lagc_hand.server.guard.GuardMiddleware` (pure ASGI): refuses a
   non-loopback ``Host`` or a foreign ``Origin`` before any routing, and turns
   any exception that escapes the app into a 500 JSON answer with a logged
   traceback (the server lives on).
2. Routes, one router per resource (:mod:`lagc_hand.server.routers`); all but
   ``/api/v1/health`` need the bearer token.
3. Exception handlers (:mod:`lagc_hand.server.errors`) that give every error
   the same JSON shape ``{"error": {"code", "message"}}``.
"""
from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from lagc_hand import __version__
from lagc_hand.server.config import ServerConfig
from lagc_hand.server.errors import ApiError, error_response  # noqa: F401  (re-exported)
from lagc_hand.server.errors import install_handlers
from lagc_hand.server.guard import GuardMiddleware
from lagc_hand.server.jobs import JobManager
from lagc_hand.server.routers import health, infer, jobs, results, token_dependency, uploads
from lagc_hand.server.security import load_or_create_token
from lagc_hand.server.service import JobService
from lagc_hand.server.store import JobStore

log = logging.getLogger("lagc_hand.server")


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


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it user-only (0700), also when it
    existed before: it holds the user's videos and results."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)


def create_app(config: ServerConfig) -> FastAPI:
    make_private_dir(config.state_dir)
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
        openapi_url=None,  # served by the health router, behind the token
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config, app.state.manager, app.state.store = config, manager, store
    app.state.state_lock = state_lock
    app.add_middleware(GuardMiddleware, config=config)

    auth = token_dependency(token)
    svc = JobService(config, store, manager)
    routers = [health.router(app, auth), uploads.router(svc, auth), jobs.router(svc, auth),
               results.router(svc, auth), infer.router(svc, auth)]
    for r in routers:
        app.include_router(r)
    install_handlers(app, routers)
    return app
