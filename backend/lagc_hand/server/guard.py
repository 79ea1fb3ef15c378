"""The outermost layer of the app: Host / Origin checks and the last line of
defence against exceptions (pure ASGI, runs before any routing)."""
from __future__ import annotations

import logging
import time

from lagc_hand.server.config import ServerConfig
from lagc_hand.server.errors import error_response
from lagc_hand.server.security import host_allowed, origin_allowed

log = logging.getLogger("lagc_hand.server")


class GuardMiddleware:
    """Refuses a non-loopback ``Host`` or a foreign ``Origin``, adds
    ``Server-Timing``, and turns any exception that escapes the app into a 500
    JSON answer with a logged traceback (the server lives on)."""

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
