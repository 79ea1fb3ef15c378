"""The server's guards: bearer token, Host header, Origin header, allowed paths.

Why each exists:

* Token: any local process (or web page) can open a TCP connection to
  127.0.0.1, so possession of a secret that only the user's account can read
  (file mode 0600) is what proves a request comes from the user's own tools.
* Host: DNS rebinding lets a web page make the browser send requests to
  127.0.0.1 under the attacker's host name; such requests carry that name in
  ``Host``, so only loopback names are accepted.
* Origin: browsers add ``Origin`` to cross-origin requests; our clients (the
  Blender add-on, scripts) send none.  The only browser origin accepted is the
  server's own (``http://127.0.0.1:PORT`` / ``http://localhost:PORT``, i.e.
  same-origin, which grants nothing new); other localhost ports are refused,
  since any local web app could be serving a hostile page there.
* Paths: a job may name a local file only inside ``--allow-dir`` folders; the
  path is resolved (``os.path.realpath``: symlinks, ``..``) before the
  containment check, so neither traversal nor a symlink can escape.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import urlsplit

from lagc_hand.server.config import LOOPBACK_HOSTS
from lagc_hand_blender.core.atomic import write_atomic

TOKEN_BYTES = 32


# --------------------------------------------------------------------------- token


def load_or_create_token(path: Path) -> str:
    """Return the token stored in ``path``; create it (random, mode 0600, folder
    0700, written atomically) when the file does not exist or is empty.

    A token file readable by group/others is tightened to 0600 rather than
    trusted as is.
    """
    path = Path(path)
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            if os.name == "posix" and (path.stat().st_mode & 0o077):
                os.chmod(path, 0o600)
            return token
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # mkstemp creates the file with mode 0600 before anything is written to it.
    write_atomic(path, lambda f: f.write(token + "\n"), binary=False, prefix=".token-", suffix="", mode=0o600)
    return token


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison (no timing oracle on the token)."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


# --------------------------------------------------------------------------- Host / Origin


def split_host_header(value: str) -> tuple[str, Optional[int]]:
    """``"127.0.0.1:8765"`` -> ``("127.0.0.1", 8765)``; ``"[::1]:80"`` -> ``("::1", 80)``;
    a malformed port gives ``("", None)`` so that the caller refuses it."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return "", None
        host, rest = value[1:end], value[end + 1 :]
    elif value.count(":") == 1:
        host, rest = value.split(":")[0], value[value.index(":") :]
    elif ":" in value:  # bare IPv6 without brackets is not a valid Host header
        return "", None
    else:
        host, rest = value, ""
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
        return "", None
    return host, int(rest[1:])


def host_allowed(value: Optional[str], extra_hosts: Iterable[str] = ()) -> bool:
    """True when a ``Host`` header names a loopback host (any port) or one of
    ``extra_hosts`` (the bind address when ``--allow-remote`` is given)."""
    if not value:
        return False  # HTTP/1.1 requires Host; a request without one is not from our clients
    host, _port = split_host_header(value)
    return bool(host) and (host in LOOPBACK_HOSTS or host in {h.lower() for h in extra_hosts})


def origin_allowed(value: Optional[str], port: int) -> bool:
    """True when there is no ``Origin`` header, or it is the server's own origin."""
    if value is None:
        return True
    parts = urlsplit(value.strip().lower())
    if parts.scheme != "http" or parts.path not in ("", "/") or parts.query or parts.username:
        return False
    try:
        origin_port = parts.port
    except ValueError:
        return False
    return parts.hostname in LOOPBACK_HOSTS and origin_port == port


# --------------------------------------------------------------------------- paths


def resolve_allowed_path(path: str, allow_dirs: Iterable[Path]) -> Optional[Path]:
    """The real path of ``path`` when it lies inside one of ``allow_dirs`` (already
    real paths), else None.  Relative paths are refused (the server's working
    folder means nothing to the client)."""
    if not path or "\x00" in path or not os.path.isabs(path):
        return None
    real = os.path.realpath(path)
    for folder in allow_dirs:
        try:
            if os.path.commonpath([real, os.fspath(folder)]) == os.fspath(folder):
                return Path(real)
        except ValueError:  # different drives on Windows
            continue
    return None
