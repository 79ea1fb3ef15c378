"""The local inference server the Blender add-on (and any script) talks to.

Modules, from the outside in:

``app``       the FastAPI application: routes, error mapping, security guards.
``security``  Host / Origin guards (DNS rebinding, browsers) and the bearer token.
``uploads``   streaming multipart parser that enforces size limits while reading.
``probe``     OpenCV probe of a submitted video (can it be read, length, size).
``jobs``      the job manager: queue, worker threads, live progress, cancel.
``store``     SQLite persistence of jobs (WAL), survives restarts.
``models``    pydantic request / response models (the OpenAPI description).
``config``    :class:`ServerConfig`, the limits and directories of one server.

The HTTP contract is ``docs/http-api.md``.
"""
from lagc_hand.server.config import ServerConfig

__all__ = ["ServerConfig"]
