"""Standard-library HTTP client of the local LAGC-Hand server (docs/http-api.md).

No ``bpy`` here and no third-party packages: it runs in a worker thread inside
Blender and in plain Python tests alike.  Every failure becomes a
:class:`ClientError` subclass whose message is written for the user.
"""
from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from .core.paths import DEFAULT_URL, token_file

API = "/api/v1"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class ClientError(Exception):
    """Talking to the backend failed; ``str(exc)`` is the message for the user."""

    code = "client_error"


class BackendUnavailable(ClientError):
    code = "unavailable"


class AuthError(ClientError):
    code = "unauthorized"


class ApiError(ClientError):
    """The server answered with an error body; ``code`` is its machine code."""

    def __init__(self, message: str, code: str = "internal", status: int = 0):
        super().__init__(message)
        self.code = code
        self.status = status


def read_token(path: str | os.PathLike | None = None) -> str:
    """The bearer token the server wrote (default: ``core.paths.token_file()``)."""
    p = Path(path) if path else token_file()
    try:
        token = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise AuthError(f"No backend token at {p}. Start the backend once (it writes the token), "
                        "or set the token file in the add-on preferences.") from None
    except OSError as exc:
        raise AuthError(f"Cannot read the backend token file {p}: {exc.strerror}") from None
    if not token:
        raise AuthError(f"The backend token file {p} is empty; restart the backend to rewrite it")
    return token


class Client:
    """One backend at ``base_url``; ``token_path=None`` uses the default token file.

    Only loopback URLs are accepted: the add-on must not send footage anywhere else.
    """

    def __init__(self, base_url: str = DEFAULT_URL, token_path: str | None = None, timeout: float = 10.0):
        url = urllib.parse.urlsplit(base_url.strip().rstrip("/"))
        if url.scheme != "http" or url.hostname not in {h.strip("[]") for h in LOOPBACK_HOSTS}:
            raise ClientError(f"Backend URL {base_url!r} is not a local http:// address "
                              "(127.0.0.1 or localhost); LAGC-Hand only talks to a local backend")
        self.base_url = urllib.parse.urlunsplit((url.scheme, url.netloc, url.path, "", ""))
        self.token_path = token_path or None
        self.timeout = timeout
        # Loopback must never go through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, body: bytes | None = None,
                 content_type: str | None = None, auth: bool = True, timeout: float | None = None):
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {read_token(self.token_path)}"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base_url + API + path, data=body, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendUnavailable(
                f"The LAGC-Hand backend is not reachable at {self.base_url} ({reason}). "
                "Start it with 'lagc-hand serve' or the add-on's Start backend button.") from None

    def _http_error(self, exc: urllib.error.HTTPError) -> ClientError:
        try:
            err = json.loads(exc.read().decode("utf-8"))["error"]
            code, message = str(err.get("code", "internal")), str(err.get("message", ""))
        except Exception:  # not our server's JSON: keep the HTTP reason
            code, message = "internal", f"HTTP {exc.code} {exc.reason}"
        if exc.code == 401:
            return AuthError(f"The backend wants a token: {message}. Check the token file setting.")
        if exc.code == 403 and code in ("forbidden", "unauthorized"):
            return AuthError(f"The backend refused the token ({message}). The token file may belong "
                             "to another backend; restart the backend or fix the token file setting.")
        return ApiError(message or f"HTTP {exc.code}", code=code, status=exc.code)

    def _json(self, method: str, path: str, payload=None, auth: bool = True):
        body = json.dumps(payload).encode("utf-8") if payload is not None else None
        _, _, data = self._request(method, path, body, "application/json" if body else None, auth)
        if not data:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            raise ApiError(f"The backend sent a reply that is not JSON ({data[:80]!r})") from None

    # ------------------------------------------------------------------ API

    def health(self) -> dict:
        return self._json("GET", "/health", auth=False)

    def submit_path(self, path: str, options: dict | None = None) -> dict:
        """Job for a video the server reads from disk (it must be allowed to)."""
        return self._json("POST", "/jobs/from-path", {"path": os.path.abspath(path), "options": options or {}})

    def submit_upload(self, path: str, options: dict | None = None) -> dict:
        """Job for a video uploaded as multipart form data."""
        try:
            with open(path, "rb") as f:
                video = f.read()
        except OSError as exc:
            raise ClientError(f"Cannot read the video {path}: {exc.strerror}") from None
        boundary = uuid.uuid4().hex
        name = os.path.basename(path).replace('"', "_")
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n'.encode(),
            json.dumps(options or {}).encode("utf-8"), b"\r\n",
            (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8"),
            video, f"\r\n--{boundary}--\r\n".encode(),
        ]
        _, _, data = self._request("POST", "/jobs", b"".join(parts), f"multipart/form-data; boundary={boundary}",
                                   timeout=max(self.timeout, 120.0))
        return json.loads(data.decode("utf-8"))

    def submit(self, path: str, options: dict | None = None) -> dict:
        """Submit by path; upload instead when the server may not read that folder."""
        if not os.path.isfile(path):
            raise ClientError(f"The video {path} does not exist")
        try:
            return self.submit_path(path, options)
        except ApiError as exc:
            if exc.code != "path_not_allowed":
                raise
            return self.submit_upload(path, options)

    def jobs(self) -> list:
        """All jobs, newest first (also a cheap way to check the token)."""
        return self._json("GET", "/jobs")["jobs"]

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{urllib.parse.quote(job_id)}")

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/jobs/{urllib.parse.quote(job_id)}/cancel")

    def resubmit(self, job_id: str) -> dict:
        """A new job with the source and options of ``job_id`` (interrupted, failed or
        cancelled); returns the new job (``resubmit_of`` = ``job_id``)."""
        return self._json("POST", f"/jobs/{urllib.parse.quote(job_id)}/resubmit")

    def result(self, job_id: str) -> bytes:
        _, _, data = self._request("GET", f"/jobs/{urllib.parse.quote(job_id)}/result", timeout=max(self.timeout, 60.0))
        return data
