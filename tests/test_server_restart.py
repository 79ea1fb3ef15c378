"""Crash and restart of the real server process: finished results survive,
unfinished jobs come back ``interrupted`` and can be resubmitted; plus the
synchronous frame endpoint."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lagc_hand_blender.core import handmotion
from test_server_harness import ServerProcess, wait_for, write_video

API = "/api/v1"


def test_kill9_mid_job_then_restart(tmp_path):
    allowed = tmp_path / "videos"
    allowed.mkdir()
    short = write_video(allowed / "short.mp4", 12)
    long = write_video(allowed / "long.mp4", 600, size=(128, 96))
    srv = ServerProcess(tmp_path / "srv", "--allow-dir", str(allowed))
    srv.start()
    token = srv.token
    try:
        with srv.client() as c:
            done = c.post(f"{API}/jobs/from-path", json={"path": str(short), "options": {"stride": 2}}).json()
            done = wait_for(c, done["id"], ("done", "failed"))
            assert done["state"] == "done", done
            result_bytes = c.get(f"{API}/jobs/{done['id']}/result").content
            running = c.post(f"{API}/jobs/from-path", json={"path": str(long)}).json()
            queued = c.post(f"{API}/jobs", files={"file": ("up.mp4", short.read_bytes(), "video/mp4")},
                            data={"options": json.dumps({"stride": 3})}).json()
            # Kill while the long job is really working (frames being processed).
            wait_for(c, running["id"], ("running",), timeout=120)
            deadline = time.monotonic() + 120
            while c.get(f"{API}/jobs/{running['id']}").json()["frames_done"] == 0:
                assert time.monotonic() < deadline, "the long job never reported progress"
                time.sleep(0.05)
            assert c.get(f"{API}/jobs/{queued['id']}").json()["state"] == "queued"
    finally:
        srv.kill9()

    srv.start()
    try:
        assert srv.token == token  # the token is reused, clients keep working
        with srv.client() as c:
            jobs = {j["id"]: j for j in c.get(f"{API}/jobs").json()["jobs"]}
            assert jobs[done["id"]]["state"] == "done"
            again = c.get(f"{API}/jobs/{done['id']}/result").content
            assert hashlib.sha256(again).digest() == hashlib.sha256(result_bytes).digest()
            assert handmotion.loads(again).num_frames == 6
            for jid in (running["id"], queued["id"]):
                job = jobs[jid]
                assert job["state"] == "interrupted", job
                assert job["error"]["code"] == "interrupted" and "resubmit" in job["error"]["message"]
                r = c.get(f"{API}/jobs/{jid}/result")
                assert r.status_code == 409 and r.json()["error"]["code"] == "job_interrupted"
            # No partial result files survive a crash.
            names = sorted(p.name for p in (srv.state_dir / "results").iterdir())
            assert names == [f"{done['id']}.npz"]
            # An interrupted upload job is resubmittable: same source, same options.
            r = c.post(f"{API}/jobs/{queued['id']}/resubmit")
            assert r.status_code == 201, r.text
            new = r.json()
            assert new["resubmit_of"] == queued["id"] and new["options"]["stride"] == 3
            new = wait_for(c, new["id"], ("done", "failed"))
            assert new["state"] == "done", new
            assert handmotion.loads(c.get(f"{API}/jobs/{new['id']}/result").content).num_frames == 4
            # Resubmitting an active job is a conflict, not a duplicate.
            r = c.post(f"{API}/jobs/{running['id']}/resubmit")
            assert r.status_code == 201
            r2 = c.post(f"{API}/jobs/{r.json()['id']}/resubmit")
            assert r2.status_code == 409 and r2.json()["error"]["code"] == "conflict"
            c.post(f"{API}/jobs/{r.json()['id']}/cancel")
    finally:
        assert srv.stop() == 0


def test_graceful_stop_marks_running_job_interrupted(tmp_path):
    allowed = tmp_path / "videos"
    allowed.mkdir()
    long = write_video(allowed / "long.mp4", 600, size=(128, 96))
    srv = ServerProcess(tmp_path / "srv", "--allow-dir", str(allowed))
    srv.start()
    with srv.client() as c:
        jid = c.post(f"{API}/jobs/from-path", json={"path": str(long)}).json()["id"]
        wait_for(c, jid, ("running",), timeout=120)
    assert srv.stop() == 0
    srv.start()
    try:
        with srv.client() as c:
            job = c.get(f"{API}/jobs/{jid}").json()
            assert job["state"] == "interrupted", job
    finally:
        srv.stop()


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def test_infer_frames(tmp_path):
    srv = ServerProcess(tmp_path / "srv", "--max-resolution", "320x240")
    srv.start()
    try:
        with srv.client() as c:
            rng = np.random.default_rng(1)
            imgs = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(3)]
            ok, jpg = cv2.imencode(".jpg", imgs[0])
            files = [("files", (f"f{i}.png", _png(im), "image/png")) for i, im in enumerate(imgs)]
            files.append(("files", ("f3.jpg", jpg.tobytes(), "image/jpeg")))
            r = c.post(f"{API}/infer/frames", files=files, data={"options": json.dumps({"fps": 25})})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["engine"] == "mediapipe"
            assert [f["index"] for f in body["frames"]] == [0, 1, 2, 3]
            assert all(f["width"] == 128 and f["height"] == 96 and f["hands"] == [] for f in body["frames"])

            r = c.post(f"{API}/infer/frames", files=[("files", ("a.gif", b"GIF89a....", "image/gif"))])
            assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media"
            r = c.post(f"{API}/infer/frames", files=[("files", ("a.png", _png(imgs[0])[:60], "image/png"))])
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_image"
            big = np.zeros((300, 400, 3), np.uint8)
            r = c.post(f"{API}/infer/frames", files=[("files", ("big.png", _png(big), "image/png"))])
            assert r.status_code == 413 and "400x300" in r.json()["error"]["message"]
            many = [("files", (f"{i}.png", _png(imgs[0]), "image/png")) for i in range(17)]
            r = c.post(f"{API}/infer/frames", files=many)
            assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
            r = c.post(f"{API}/infer/frames", files=files[:1], data={"options": json.dumps({"fps": -1})})
            assert r.status_code == 422 and "fps" in r.json()["error"]["message"]
            r = c.post(f"{API}/infer/frames", files=files[:1], data={"options": json.dumps({"engine": "lagc"})})
            assert r.status_code == 422 and r.json()["error"]["code"] == "engine_unavailable"
    finally:
        srv.stop()


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (Linux /proc; children are listed per thread)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_worker_process_crash_fails_job_not_server(tmp_path):
    """A native crash in the pipeline (here: SIGKILL of the job's worker process)
    fails that one job with a clear message; the server and later jobs go on."""
    allowed = tmp_path / "videos"
    allowed.mkdir()
    long = write_video(allowed / "long.mp4", 600, size=(128, 96))
    short = write_video(allowed / "short.mp4", 9)
    srv = ServerProcess(tmp_path / "srv", "--allow-dir", str(allowed))
    srv.start()
    try:
        with srv.client() as c:
            jid = c.post(f"{API}/jobs/from-path", json={"path": str(long)}).json()["id"]
            wait_for(c, jid, ("running",), timeout=120)
            deadline = time.monotonic() + 120
            while c.get(f"{API}/jobs/{jid}").json()["frames_done"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            # (multiprocessing's resource tracker is a child too; the worker runs spawn_main)
            workers = [p for p in _children(srv.proc.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert len(workers) == 1, workers
            os.kill(workers[0], signal.SIGKILL)
            job = wait_for(c, jid, ("failed", "done", "cancelled"), timeout=60)
            assert job["state"] == "failed" and job["error"]["code"] == "internal", job
            assert "worker process" in job["error"]["message"]
            assert srv.alive()
            job = wait_for(c, c.post(f"{API}/jobs/from-path", json={"path": str(short)}).json()["id"],
                           ("done", "failed"), timeout=120)
            assert job["state"] == "done", job
            assert handmotion.loads(c.get(f"{API}/jobs/{job['id']}/result").content).num_frames == 9
    finally:
        srv.stop()


def test_keep_uploads_keeps_videos_and_resubmit_after_done(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 10)
    srv = ServerProcess(tmp_path / "srv", "--keep-uploads")
    srv.start()
    try:
        with srv.client() as c:
            job = c.post(f"{API}/jobs", files={"file": ("clip.mp4", video.read_bytes(), "video/mp4")},
                         data={"options": json.dumps({"stride": 5})}).json()
            job = wait_for(c, job["id"], ("done", "failed"))
            assert job["state"] == "done", job
            assert len(list((srv.state_dir / "uploads" / job["id"]).iterdir())) == 1  # kept
            r = c.post(f"{API}/jobs/{job['id']}/resubmit")
            assert r.status_code == 201, r.text
            again = wait_for(c, r.json()["id"], ("done", "failed"))
            assert again["state"] == "done" and again["resubmit_of"] == job["id"]
            assert (srv.state_dir / "uploads" / job["id"]).is_dir()
    finally:
        assert srv.stop() == 0
