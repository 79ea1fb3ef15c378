"""Configuration of one server process (limits, directories, network)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerConfig:
    """Everything ``lagc-hand serve`` can set.

    host / port:        where uvicorn listens.
    device:             default torch device for jobs whose options leave ``device="auto"``.
    state_dir:          holds ``jobs.sqlite3``, ``uploads/`` and ``results/``.
    token_file:         where the bearer token lives (created 0600 on first start).
    allow_dirs:         real (symlink-resolved) folders whose files may be submitted by path.
    max_upload_bytes:   largest accepted video upload (whole multipart body, streamed).
    max_frames:         most frames one job may process (after frame range and stride).
    max_width/height:   largest accepted video resolution, pixels.
    workers:            jobs run at the same time (the CPU/GPU is the bottleneck: 1).
    allow_remote:       listening on a non-loopback address was asked for explicitly.
    max_infer_frames:   most images in one ``POST /api/v1/infer/frames``.
    max_infer_bytes:    largest total body of one ``POST /api/v1/infer/frames``.
    keep_uploads:       keep uploaded videos after their job ends (default: removed
                        when it is done, failed or cancelled; kept while interrupted).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    device: str = "auto"
    state_dir: Path = field(default_factory=lambda: Path("."))
    token_file: Path = field(default_factory=lambda: Path("token"))
    allow_dirs: list[Path] = field(default_factory=list)
    max_upload_bytes: int = 2048 * 1024 * 1024
    max_frames: int = 36000
    max_width: int = 4096
    max_height: int = 4096
    workers: int = 1
    allow_remote: bool = False
    max_infer_frames: int = 16
    max_infer_bytes: int = 32 * 1024 * 1024
    keep_uploads: bool = False

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.token_file = Path(self.token_file)
        # Resolve once: containment checks compare real paths on both sides.
        self.allow_dirs = [Path(os.path.realpath(d)) for d in self.allow_dirs]

    @property
    def db_path(self) -> Path:
        return self.state_dir / "jobs.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.state_dir / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.state_dir / "results"

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


def parse_resolution(text: str) -> tuple[int, int]:
    """``"3840x2160"`` -> ``(3840, 2160)``; raises ``ValueError`` with a readable message."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"resolution must look like WIDTHxHEIGHT (e.g. 3840x2160), got {text!r}")
    w, h = (int(p) for p in parts)
    if w <= 0 or h <= 0:
        raise ValueError(f"resolution must be positive, got {text!r}")
    return w, h
