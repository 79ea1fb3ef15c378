"""Where the backend keeps its token and state (standard library only).

The server writes its bearer token to :func:`token_file`; the Blender add-on
reads it from the same place, so both use this one function.
Overrides: ``LAGC_HAND_TOKEN_FILE``, ``LAGC_HAND_CONFIG_DIR``, ``LAGC_HAND_STATE_DIR``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "lagc-hand"


def config_dir() -> Path:
    env = os.environ.get("LAGC_HAND_CONFIG_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP


def state_dir() -> Path:
    env = os.environ.get("LAGC_HAND_STATE_DIR")
    if env:
        return Path(env)
    if sys.platform in ("win32", "darwin"):
        return config_dir() / "state"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / APP


def token_file() -> Path:
    env = os.environ.get("LAGC_HAND_TOKEN_FILE")
    return Path(env) if env else config_dir() / "token"


DEFAULT_PORT = 8765
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
