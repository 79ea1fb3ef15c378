"""A real stdlib HTTP server on 127.0.0.1 speaking docs/http-api.md (v1).

It drives the add-on's client and job runner through states the real backend
only reaches with real footage and minutes of compute (done with a result,
failed with a message, long jobs to cancel), in milliseconds.  Jobs advance
by ``step`` frames per status request.
"""
from __future__ import annotations

import email.parser
import email.policy
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ApiServer:
    """token: the bearer token; result: bytes served as a finished job's result;
    fail_message: finish jobs as failed with this message; endless: never finish;
    allowed_dir: from-path submissions outside it get 403 path_not_allowed;
    result_for: ``options -> bytes``, the result of a job made with those options
    (instead of ``result``), e.g. a motion of the requested frame range;
    port / jobs: a "restarted" server takes the port and the job table of the
    one it replaces (``restarted()``)."""

    def __init__(self, token: str, result: bytes = b"", frames_total: int = 6, step: int = 2,
                 fail_message: str | None = None, endless: bool = False, allowed_dir: str | None = None,
                 result_for=None, port: int = 0, jobs: dict | None = None):
        self.token = token
        self.result = result
        self.result_for = result_for
        self.frames_total = frames_total
        self.step = step
        self.fail_message = fail_message
        self.endless = endless
        self.allowed_dir = allowed_dir
        self.jobs: dict[str, dict] = {} if jobs is None else jobs
        self.uploads: list[tuple[str, int, dict]] = []
        self.cancelled: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def restarted(self, interrupt: bool = False, **kw) -> "ApiServer":
        """A new server on the same port with the same jobs (this one must be stopped);
        ``interrupt``: queued/running jobs become ``interrupted``, as the real backend
        marks them when it starts."""
        if interrupt:
            for job in self.jobs.values():
                if job["state"] in ("queued", "running"):
                    job["state"], job["error"] = "interrupted", {"code": "interrupted",
                                                                 "message": "the server stopped"}
        args = dict(token=self.token, result=self.result, frames_total=self.frames_total, step=self.step,
                    fail_message=self.fail_message, endless=self.endless, allowed_dir=self.allowed_dir,
                    result_for=self.result_for)
        args.update(kw)
        return ApiServer(port=self._httpd.server_address[1], jobs=self.jobs, **args)

    def _new_job(self, source: str, options: dict) -> dict:
        job = {"id": uuid.uuid4().hex, "state": "queued", "stage": "decode", "frames_done": 0,
               "frames_total": self.frames_total, "fps": 0.0, "eta_s": None, "error": None,
               "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
               "source": source, "options": options, "summary": None}
        self.jobs[job["id"]] = job
        return job

    def _advance(self, job: dict) -> None:
        if job["state"] not in ("queued", "running"):
            return
        job["state"], job["stage"] = "running", "detect"
        limit = self.frames_total - 1 if self.endless else self.frames_total
        job["frames_done"] = min(limit, job["frames_done"] + self.step)
        job["fps"] = 12.5
        if job["frames_done"] >= self.frames_total:
            if self.fail_message:
                job["state"], job["error"] = "failed", {"code": "invalid_video", "message": self.fail_message}
            else:
                job["state"], job["stage"], job["summary"] = "done", "done", {"frames": self.frames_total}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, body=None, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, message: str):
                self._send(status, {"error": {"code": code, "message": message}})

            def _authorised(self) -> bool:
                auth = self.headers.get("Authorization")
                if not auth:
                    self._error(401, "unauthorized", "missing bearer token")
                    return False
                if auth != f"Bearer {server.token}":
                    self._error(403, "forbidden", "wrong token")
                    return False
                return True

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                parts = self.path.split("/")[3:]  # after /api/v1
                if parts == ["health"]:
                    return self._send(200, {"status": "ok", "version": "0.1.0", "engines": ["mediapipe"]})
                if not self._authorised():
                    return None
                if parts == ["jobs"]:
                    return self._send(200, {"jobs": list(server.jobs.values())[::-1]})
                job = server.jobs.get(parts[1]) if len(parts) >= 2 else None
                if job is None:
                    return self._error(404, "not_found", "no such job")
                if len(parts) == 2:
                    server._advance(job)
                    return self._send(200, job)
                if parts[2:] == ["result"]:
                    if job["state"] != "done":
                        return self._error(409, "not_ready", f"the job is {job['state']}")
                    data = server.result_for(job["options"]) if server.result_for else server.result
                    return self._send(200, data, "application/octet-stream")
                return self._error(404, "not_found", "no such endpoint")

            def do_POST(self):
                if not self._authorised():
                    return None
                parts = self.path.split("/")[3:]
                body = self._body()
                if parts == ["jobs", "from-path"]:
                    req = json.loads(body)
                    path = req["path"]
                    if server.allowed_dir and not os.path.abspath(path).startswith(server.allowed_dir + os.sep):
                        return self._error(403, "path_not_allowed", f"{path} is outside the allowed folders")
                    return self._send(201, server._new_job(os.path.basename(path), req.get("options") or {}))
                if parts == ["jobs"]:
                    head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
                    fields = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
                    video = fields["file"]
                    options = json.loads(fields["options"].get_payload(decode=True) or b"{}")
                    data = video.get_payload(decode=True)
                    server.uploads.append((video.get_filename(), len(data), options))
                    return self._send(201, server._new_job(video.get_filename(), options))
                if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "resubmit":
                    old = server.jobs.get(parts[1])
                    if old is None:
                        return self._error(404, "not_found", "no such job")
                    if old["state"] in ("queued", "running"):
                        return self._error(409, "conflict", f"job {old['id']} is still {old['state']}")
                    job = server._new_job(old["source"], old["options"])
                    job["resubmit_of"] = old["id"]
                    return self._send(201, job)
                if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "cancel":
                    job = server.jobs.get(parts[1])
                    if job is None:
                        return self._error(404, "not_found", "no such job")
                    if job["state"] in ("queued", "running"):
                        job["state"] = "cancelled"
                    server.cancelled.append(job["id"])
                    return self._send(200, job)
                return self._error(404, "not_found", "no such endpoint")

        return Handler
