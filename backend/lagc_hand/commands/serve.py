"""Run the local inference server the Blender add-on talks to.

Listens on 127.0.0.1 by default.  Every request except GET /api/v1/health needs
the bearer token that the server creates on first start and stores in a
user-only file (the add-on reads it from there).  Videos can be uploaded, or
read from disk when they lie under a folder given with --allow-dir.

Environment: LAGC_HAND_TOKEN_FILE (token path), LAGC_HAND_STATE_DIR (jobs and
results), LAGC_HAND_CONFIG_DIR.  API: docs/http-api.md.
"""
from __future__ import annotations

import argparse
import logging
import sys

from lagc_hand.errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lagc_hand_blender.core import paths

    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=paths.DEFAULT_PORT, help=f"TCP port (default {paths.DEFAULT_PORT})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="torch device for jobs that do not choose one (default auto)")
    p.add_argument("--state-dir", default=None, help=f"jobs database, uploads and results (default {paths.state_dir()})")
    p.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                   help="folder whose videos may be submitted by path (repeatable); none by default")
    p.add_argument("--max-upload-mb", type=float, default=2048, help="largest video upload, MB (default 2048)")
    p.add_argument("--max-frames", type=int, default=36000, help="most frames one job may process (default 36000)")
    p.add_argument("--max-resolution", default="4096x4096", help="largest video size WIDTHxHEIGHT (default 4096x4096)")
    p.add_argument("--workers", type=int, default=1, help="jobs run at the same time (default 1: the CPU/GPU is the bottleneck)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow --host to be a non-loopback address (exposes the server to the network)")
    p.add_argument("--keep-uploads", action="store_true",
                   help="keep uploaded videos after their job ends (default: removed when it is done, failed or cancelled)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def build_config(args: argparse.Namespace):
    """Validate the command line and turn it into a ServerConfig (InputError on bad values)."""
    import os
    from pathlib import Path

    from lagc_hand.server.config import LOOPBACK_HOSTS, ServerConfig, parse_resolution
    from lagc_hand_blender.core import paths

    if args.host not in LOOPBACK_HOSTS and not args.allow_remote:
        raise InputError(f"--host {args.host} is not a loopback address; add --allow-remote if you really want "
                         "other machines to reach this server")
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be 1..65535, got {args.port}")
    if args.workers < 1 or args.workers > 64:
        raise InputError(f"--workers must be 1..64, got {args.workers}")
    if args.max_upload_mb <= 0 or args.max_frames <= 0:
        raise InputError("--max-upload-mb and --max-frames must be positive")
    try:
        max_w, max_h = parse_resolution(args.max_resolution)
    except ValueError as exc:
        raise InputError(f"--max-resolution: {exc}") from None
    for d in args.allow_dir:
        if not os.path.isdir(d):
            raise InputError(f"--allow-dir {d}: not a folder")
    if args.device == "cuda":
        from lagc_hand.server.service import cuda_available

        if not cuda_available():
            raise InputError("--device cuda: this torch has no usable CUDA device (CPU-only build or no GPU); "
                             "use --device cpu or auto")
    return ServerConfig(
        host=args.host, port=args.port, device=args.device,
        state_dir=Path(args.state_dir) if args.state_dir else paths.state_dir(),
        token_file=paths.token_file(),
        allow_dirs=[Path(d) for d in args.allow_dir],
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_frames=args.max_frames, max_width=max_w, max_height=max_h,
        workers=args.workers, allow_remote=args.allow_remote, keep_uploads=args.keep_uploads,
    )


def bind_socket(host: str, port: int):
    """Bind the listening socket before anything says "ready", so a busy port
    fails at once with a clear message (InputError, non-zero exit)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        import os

        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise InputError(f"cannot listen on {host}:{port}: {why}; another program (perhaps another "
                         f"lagc-hand server) uses that port - stop it or choose another with --port") from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lagc_hand.server.app import create_app

    config = build_config(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not config.is_loopback:
        print(f"WARNING: listening on {config.host}: other machines can reach this server. Anyone who has the "
              "token can run jobs and read files under --allow-dir. The traffic is not encrypted.", file=sys.stderr)
    sock = bind_socket(config.host, config.port)
    try:
        app = create_app(config)
        print(f"lagc-hand serve: http://{'[' + config.host + ']' if ':' in config.host else config.host}:{config.port}  "
              f"token file: {config.token_file}  state: {config.state_dir}", file=sys.stderr, flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=args.log_level == "debug",
                                               timeout_graceful_shutdown=15))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown (as uvicorn.run does)
            pass
    finally:
        sock.close()
    return 0 if server.started else 3  # 3: start-up failed (uvicorn's own code for it)
