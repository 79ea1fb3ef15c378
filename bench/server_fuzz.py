"""Fuzz the running local server from its own OpenAPI description (schemathesis).

Starts the real server (``lagc-hand serve``) in a temp state folder with one
``--allow-dir`` holding a small valid video, fetches ``/openapi.json`` with the
token, and runs ``schemathesis run`` against it: every operation, examples +
coverage + fuzzing + stateful phases, all checks except
``positive_data_acceptance`` (see below).  Then checks the server is still alive
and answering, and that its log holds no unexpected traceback.

Why ``positive_data_acceptance`` is excluded: it expects schema-valid requests
to succeed, but a schema-valid upload is any bytes (the schema cannot say "a
decodable video"), and a schema-valid path is any string (the schema cannot say
"under --allow-dir"); the server correctly refuses those with 415 / 403 / 422.

    .venv/bin/python bench/server_fuzz.py [--max-examples 30] [--max-time 300] [--json out.json]

Needs ``pip install -e '.[bench]'`` (schemathesis).  Exit status 0 when
schemathesis found no failure and the server survived.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from lagc_hand.server.launcher import ServerProcess

EXCLUDED_CHECKS = ["positive_data_acceptance"]


def write_clip(path: Path) -> None:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(6):
        w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    w.release()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-examples", type=int, default=30, help="examples per operation and phase")
    ap.add_argument("--max-time", type=int, default=300, help="time budget of the schemathesis run, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    st = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or shutil.which("schemathesis")
    if st is None:
        print("schemathesis is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="lagc-fuzz-") as tmp:
        tmp = Path(tmp)
        allowed = tmp / "videos"
        allowed.mkdir()
        write_clip(allowed / "clip.mp4")
        srv = ServerProcess(tmp / "server", "--allow-dir", str(allowed), "--max-upload-mb", "4",
                            "--max-frames", "100", "--log-level", "warning")
        srv.start()
        try:
            schema_path = tmp / "openapi.json"
            with srv.client() as c:
                schema_path.write_text(c.get("/openapi.json").text)
            cmd = [st, "run", str(schema_path), "--url", srv.url,
                   "-H", f"Authorization: Bearer {srv.token}",
                   "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
                   "--max-examples", str(args.max_examples), "--max-time", str(args.max_time),
                   "--seed", str(args.seed), "--request-timeout", "60", "--workers", "1",
                   "--report", "ndjson", "--report-dir", str(tmp / "report"), "--no-color"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.max_time + 600)
            seconds = time.perf_counter() - t0
            alive = srv.alive()
            health = httpx.get(srv.url + "/api/v1/health", timeout=10, trust_env=False).status_code if alive else None
            with srv.client() as c:
                jobs = c.get("/api/v1/jobs", params={"limit": 1000}).json()["jobs"]
            requests = statuses = None
            for f in (tmp / "report").glob("*.ndjson"):
                requests, statuses = count_statuses(f)
            log = srv.log()
        finally:
            srv.stop()
    tail = proc.stdout[-6000:]
    print(tail)
    five = {k: v for k, v in (statuses or {}).items() if k.startswith("5")}
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "schemathesis": subprocess.run([st, "--version"], capture_output=True, text=True).stdout.strip(),
        "command": " ".join(c if "Bearer" not in c else "Authorization: Bearer <token>" for c in cmd[1:]),
        "exit_code": proc.returncode, "seconds": round(seconds, 1),
        "requests": requests, "statuses": statuses, "server_5xx": five,
        "jobs_created": len(jobs), "jobs_by_state": _count(j["state"] for j in jobs),
        "server_alive_after": alive, "health_after": health,
        "traceback_in_log": "Traceback" in log,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if proc.returncode == 0 and alive and health == 200 and not five else 1


def _count(items) -> dict:
    out: dict = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def count_statuses(path: Path):
    """Requests and their status codes from a schemathesis ndjson report (best effort:
    the format is schemathesis's, so unknown layouts just give None)."""
    statuses: dict[str, int] = {}
    n = 0

    def walk(o):
        nonlocal n
        if isinstance(o, dict):
            resp = o.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("status_code"), int):
                n += 1
                k = str(resp["status_code"])
                statuses[k] = statuses.get(k, 0) + 1
            for v in o.values():
                if v is not resp:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for line in path.read_text().splitlines():
        try:
            walk(json.loads(line))
        except ValueError:
            continue
    return (n, dict(sorted(statuses.items()))) if n else (None, None)


if __name__ == "__main__":
    sys.exit(main())
