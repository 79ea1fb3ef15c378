"""Load check of the local server: N clients poll job status while M jobs run.

Starts the real server (``lagc-hand serve``) in a temp state folder, then

1. runs each job alone (one client, one job at a time) -> reference results;
2. submits the same M jobs at once (``--workers`` of them run together) while
   ``--clients`` threads poll ``GET /api/v1/jobs/{id}`` and ``GET /api/v1/jobs``
   as fast as they can;
3. reports errors (any non-200 answer or transport error), status latency
   percentiles (target: p99 < 50 ms) and whether every result is identical
   (all arrays bit for bit, header fields other than timing metadata) to its
   single-client reference.

Each job uses a different frame range of the input, so a result delivered to
the wrong job would show up as a mismatch.

    .venv/bin/python bench/server_load.py [--video assets/samples/two_hands.mp4] [--json out.json]

Without ``--video`` it uses the sample clip when present, else writes a noise clip.
Exit status 0 only when there were no errors and all results matched.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from lagc_hand.server.launcher import ServerProcess
from lagc_hand_blender.core import handmotion

API = "/api/v1"
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "samples" / "two_hands.mp4"


def noise_clip(path: Path, frames: int = 120, size=(320, 240)) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for i in range(frames):
        img = base.copy()
        img[h // 3 : h // 3 + 30, (i * 4) % (w - 30) :][:, :30] = 255
        writer.write(img)
    writer.release()
    return path


def frame_count(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n


def wait_done(c: httpx.Client, job_id: str, timeout: float, interval: float = 0.2) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"{API}/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(interval)
    raise TimeoutError(f"job {job_id} not finished after {timeout} s")


def comparable(motion: handmotion.HandMotion) -> dict[str, np.ndarray]:
    arrays = handmotion.to_arrays(motion)
    header = json.loads(bytes(arrays.pop("header")).decode("utf-8"))
    header.pop("meta", None)  # source path, timings: differ by design
    arrays["header_without_meta"] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)
    return arrays


def differences(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            out.append(f"{k}: missing")
        elif a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]):
            diff = (np.abs(a[k].astype(float) - b[k].astype(float)).max()
                    if a[k].shape == b[k].shape and a[k].dtype.kind in "fiub" else "shape")
            out.append(f"{k}: max |diff| {diff}")
    return out


def poll(k, url, token, interval, ids_q, stop, out) -> None:
    """One polling client (runs in its own process): GET a job's status (every
    10th request: the job list) until ``stop``; sends back latencies and errors."""
    lat, errors, server = [], [], []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                      trust_env=False) as c:
        c.get(f"{API}/health")  # connect before the clock starts
        out.put("ready")
        ids = ids_q.get()
        i = k
        while not stop.is_set():
            path = f"{API}/jobs" if i % 10 == 9 else f"{API}/jobs/{ids[i % len(ids)]}"
            t0 = time.perf_counter()
            try:
                r = c.get(path)
                ok, detail = r.status_code == 200, f"{r.status_code} {r.text[:100]}"
                timing = r.headers.get("server-timing", "")
                if timing.startswith("app;dur="):
                    server.append(float(timing[8:]) / 1000)
            except httpx.HTTPError as exc:
                ok, detail = False, repr(exc)
            lat.append(time.perf_counter() - t0)
            if not ok:
                errors.append(f"{path}: {detail}")
            i += 1
            if interval:
                time.sleep(interval)
    out.put((lat, errors, server))


def run_pollers(srv, args, get_ids, wait):
    """Start ``args.clients`` polling processes (each its own process, as separate
    add-on instances or scripts would be, so that client-side GIL contention does
    not inflate the numbers); ``get_ids()`` gives the job ids once they are all
    connected; they poll until ``wait()`` returns.  Returns (latencies per
    client, errors, server-side times per client from ``Server-Timing``, CPU
    seconds the server process used meanwhile)."""
    ctx = mp.get_context("spawn")
    stop, ids_q, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=poll, args=(k, srv.url, srv.token, args.interval, ids_q, stop, out))
             for k in range(args.clients)]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get(timeout=300) == "ready"
    ids = get_ids()
    cpu0 = process_cpu_s(srv.proc.pid)
    for _ in procs:
        ids_q.put(ids)
    wait()
    stop.set()
    lat, errors, server = [], [], []
    for _ in procs:
        per_lat, per_err, per_server = out.get(timeout=120)
        lat.append(per_lat)
        errors += per_err
        server.append(per_server)
    cpu = process_cpu_s(srv.proc.pid) - cpu0
    for p in procs:
        p.join(30)
    return lat, errors, server, cpu


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc; NaN elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def latency_summary(lat) -> dict:
    ms = [x * 1000 for per in lat for x in per]
    return {"requests": len(ms), "p50": round(percentile(ms, 50), 2), "p95": round(percentile(ms, 95), 2),
            "p99": round(percentile(ms, 99), 2), "max": round(max(ms), 2), "mean": round(statistics.fmean(ms), 2)}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def _parse_args(argv) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--workers", type=int, default=4, help="server --workers (jobs running together)")
    ap.add_argument("--frames", type=int, default=40, help="frames per job (each job a different range)")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.1,
                    help="pause between one client's requests, s (0 = as fast as it can)")
    ap.add_argument("--idle-seconds", type=float, default=4.0, help="length of the no-job baseline")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", type=Path, default=None, help="also write the report here")
    return ap.parse_args(argv)


def _reference_runs(srv, video: Path, options: list[dict], timeout: float) -> tuple[list[dict], list[float]]:
    """Each job alone, one after the other: (comparable results, seconds per job)."""
    with srv.client() as c:
        ref, ref_s = [], []
        for opt in options:
            t0 = time.perf_counter()
            job = c.post(f"{API}/jobs/from-path", json={"path": str(video), "options": opt}).json()
            job = wait_done(c, job["id"], timeout)
            if job["state"] != "done":
                raise SystemExit(f"reference job failed: {job}")
            ref_s.append(time.perf_counter() - t0)
            ref.append(comparable(handmotion.loads(c.get(f"{API}/jobs/{job['id']}/result").content)))
    return ref, ref_s


def _loaded_runs(srv, args: argparse.Namespace, video: Path, options: list[dict]) -> dict:
    """The same jobs at once while ``args.clients`` clients poll.  Returns ``lat``,
    ``errors``, ``server``, ``cpu`` as :func:`run_pollers`, ``finals`` (each job's
    final status), ``results`` (comparable results, None for a job not done) and
    ``load_s`` (seconds from submission until all jobs ended)."""
    state = {}

    def submit():
        with srv.client() as c:
            state["ids"] = [c.post(f"{API}/jobs/from-path", json={"path": str(video), "options": o}).json()["id"]
                            for o in options]
        return state["ids"]

    def wait_all():
        t0 = time.perf_counter()
        with srv.client() as c:
            state["finals"] = [wait_done(c, jid, args.timeout, interval=0.5) for jid in state["ids"]]
        state["load_s"] = time.perf_counter() - t0

    state["lat"], state["errors"], state["server"], state["cpu"] = run_pollers(srv, args, submit, wait_all)
    with srv.client() as c:
        state["results"] = [comparable(handmotion.loads(c.get(f"{API}/jobs/{j}/result").content))
                            if f["state"] == "done" else None for j, f in zip(state["ids"], state["finals"])]
    return state


def _mismatches(ref: list[dict], results: list, finals: list[dict]) -> dict[int, list[str]]:
    """Job index -> what differs from its single-client reference (or why it has no result)."""
    mismatches = {}
    for i, (r, f) in enumerate(zip(results, finals)):
        if r is None:
            mismatches[i] = [f"job ended {f['state']}: {f.get('error')}"]
        else:
            d = differences(ref[i], r)
            if d:
                mismatches[i] = d
    return mismatches


def main(argv=None) -> int:
    args = _parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lagc-load-") as tmp:
        tmp = Path(tmp)
        videos = tmp / "videos"
        videos.mkdir()
        video = args.video or (SAMPLE if SAMPLE.exists() else noise_clip(videos / "noise.mp4"))
        video = Path(video).resolve()
        n_src = frame_count(video)
        span = args.frames * args.stride
        starts = [int(s) for s in np.linspace(0, max(0, n_src - span), args.jobs)]
        options = [{"frame_start": s, "frame_end": min(n_src, s + span), "stride": args.stride} for s in starts]
        srv = ServerProcess(tmp / "server", "--allow-dir", str(video.parent), "--workers", str(args.workers),
                            "--log-level", "warning")
        srv.start()
        try:
            # 1. reference: one job at a time, nothing else going on
            ref, ref_s = _reference_runs(srv, video, options, args.timeout)
            # 2. baseline: the same polling with no job running (server overhead alone)
            ref_ids = [j["id"] for j in srv.client().get(f"{API}/jobs").json()["jobs"]]
            idle_lat, idle_err, idle_server, idle_cpu = run_pollers(srv, args, lambda: ref_ids, lambda: time.sleep(args.idle_seconds))
            # 3. the same jobs at once, under polling load
            load = _loaded_runs(srv, args, video, options)
            alive = srv.alive()
        finally:
            srv.stop()

    lat, errors, server, load_s = load["lat"], load["errors"], load["server"], load["load_s"]
    all_lat = [x for per in lat for x in per]
    mismatches = _mismatches(ref, load["results"], load["finals"])
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "video": str(video.relative_to(REPO) if video.is_relative_to(REPO) else video.name),
        "jobs": args.jobs, "workers": args.workers, "clients": args.clients, "poll_interval_s": args.interval,
        "frames_per_job": args.frames, "stride": args.stride,
        "single_job_seconds": [round(s, 2) for s in ref_s],
        "load_seconds": round(load_s, 2),
        "requests_per_s": round(len(all_lat) / load_s, 1),
        "errors": len(errors) + len(idle_err), "first_errors": (errors + idle_err)[:5],
        "latency_ms_while_jobs_run": latency_summary(lat),
        "server_time_ms_while_jobs_run": latency_summary(server),
        "latency_ms_no_jobs": latency_summary(idle_lat),
        "server_time_ms_no_jobs": latency_summary(idle_server),
        # CPU the server process (not its job workers) spent per status request:
        # what a request costs on an uncontended core.
        "server_cpu_ms_per_request_no_jobs": round(1000 * idle_cpu / max(1, sum(map(len, idle_lat))), 3),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "p99_target_ms": 50,
        "results_identical": not mismatches, "mismatches": mismatches,
        "server_alive_after": alive,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if (not errors and not idle_err and not mismatches and alive) else 1


if __name__ == "__main__":
    sys.exit(main())
