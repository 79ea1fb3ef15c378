"""The local server, tested as a real process on 127.0.0.1 (``lagc-hand serve``)
with real HTTP (httpx), real videos written by OpenCV, the real pipeline.

One server serves most tests of this module (start-up costs seconds); tests
that break or kill a server start their own.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest

from lagc_hand_blender.core import handmotion
from test_server_harness import REPO, ServerProcess, wait_for, write_video

API = "/api/v1"
MAX_FRAMES = 400


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    allowed = root / "allowed"
    outside = root / "outside"
    allowed.mkdir()
    outside.mkdir()
    m = {
        "root": root, "allowed": allowed, "outside": outside,
        "short": write_video(allowed / "short clip.mp4", 15),
        "long": write_video(allowed / "long.mp4", 390, size=(128, 96)),
        "too_many": write_video(allowed / "too_many.mp4", MAX_FRAMES + 30, size=(32, 24)),
        "too_big": write_video(allowed / "too_big.mp4", 2, size=(704, 480)),
        "secret": write_video(outside / "secret.mp4", 5),
    }
    data = m["short"].read_bytes()
    m["corrupt"] = allowed / "corrupt.mp4"
    m["corrupt"].write_bytes(data[:400])  # header of a real mp4, body cut off
    m["junk"] = allowed / "notes.txt"
    m["junk"].write_bytes(b"this is not a video\n" * 50)
    m["empty"] = allowed / "empty.mp4"
    m["empty"].write_bytes(b"")
    (allowed / "escape.mp4").symlink_to(m["secret"])
    (allowed / "outdir").symlink_to(outside)
    return m


@pytest.fixture(scope="module")
def server(tmp_path_factory, media):
    srv = ServerProcess(tmp_path_factory.mktemp("server"), "--allow-dir", str(media["allowed"]),
                        "--max-upload-mb", "2", "--max-frames", str(MAX_FRAMES), "--max-resolution", "640x480")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def client(server):
    with server.client() as c:
        yield c


def _upload(client, path: Path, options: dict | None = None, name: str | None = None):
    files = {"file": (name or path.name, path.read_bytes(), "video/mp4")}
    data = {"options": json.dumps(options)} if options is not None else None
    return client.post(f"{API}/jobs", files=files, data=data)


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]["message"]


# --------------------------------------------------------------------------- auth and guards


def test_health_needs_no_token(server):
    r = httpx.get(server.url + f"{API}/health", trust_env=False)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and "mediapipe" in body["engines"]


def test_token_file_is_private(server):
    assert (server.token_file.stat().st_mode & 0o777) == 0o600
    assert len(server.token) >= 40


@pytest.mark.parametrize("method, path", [("GET", "/jobs"), ("GET", "/jobs/" + "0" * 32), ("POST", "/jobs"),
                                          ("POST", "/jobs/from-path"), ("POST", "/infer/frames")])
def test_missing_token_401_wrong_token_403(server, method, path):
    with server.client(token=None) as c:
        r = c.request(method, API + path)
        _error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    with server.client(token="not-the-token") as c:
        _error(c.request(method, API + path), 403, "forbidden")
    with server.client(token=None, headers={"Authorization": "Basic " + server.token}) as c:
        _error(c.request(method, API + path), 401, "unauthorized")


def test_openapi_needs_token_and_lists_the_contract(server, client):
    assert httpx.get(server.url + "/openapi.json", trust_env=False).status_code == 401
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for p in ("/health", "/jobs", "/jobs/from-path", "/jobs/{job_id}", "/jobs/{job_id}/cancel",
              "/jobs/{job_id}/result", "/jobs/{job_id}/resubmit", "/infer/frames"):
        assert API + p in paths
    job = spec["components"]["schemas"]["Job"]["properties"]
    for field in ("id", "state", "stage", "frames_done", "frames_total", "fps", "eta_s", "error", "created",
                  "updated", "source", "options", "summary"):
        assert field in job
    doc = (REPO / "docs" / "http-api.md").read_text()
    for p in paths:
        assert p.replace("{job_id}", "{id}") in doc, f"{p} missing from docs/http-api.md"


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example:80",
                                  "192.168.0.10", "[::2]:8765"])
def test_foreign_host_refused(client, host):
    msg = _error(client.get(f"{API}/jobs", headers={"Host": host}), 403, "forbidden")
    assert "Host" in msg
    _error(client.get(f"{API}/health", headers={"Host": host}), 403, "forbidden")


def test_loopback_hosts_accepted(server, client):
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost", f"[::1]:{server.port}"):
        assert client.get(f"{API}/jobs", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1", "http://localhost:3000", "null"])
def test_foreign_origin_refused(client, origin):
    msg = _error(client.get(f"{API}/jobs", headers={"Origin": origin}), 403, "forbidden")
    assert "Origin" in msg
    # Even a simple form POST (no preflight) from a web page is refused.
    _error(client.post(f"{API}/jobs/from-path", headers={"Origin": origin}, json={"path": "/x"}), 403, "forbidden")


def test_own_origin_accepted(server, client):
    assert client.get(f"{API}/jobs", headers={"Origin": f"http://127.0.0.1:{server.port}"}).status_code == 200


# --------------------------------------------------------------------------- jobs


def test_upload_progress_and_result_round_trip(server, client, media):
    r = _upload(client, media["short"], {"stride": 2, "smoothing": 0.5})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] in ("queued", "running") and job["source"] == "short clip.mp4"
    assert job["options"]["stride"] == 2 and job["options"]["smoothing"] == 0.5
    _error(client.get(f"{API}/jobs/{job['id']}/result"), 409, "not_ready") if job["state"] != "done" else None
    seen: list[dict] = []
    job = wait_for(client, job["id"], ("done", "failed"), seen=seen)
    assert job["state"] == "done", job
    assert job["stage"] == "done" and job["error"] is None and job["summary"] is not None
    assert job["frames_total"] == 8 and job["frames_done"] == 8  # 15 frames, stride 2
    # Progress was visible and never went backwards within the detect stage.
    done_counts = [s["frames_done"] for s in seen if s["stage"] == "detect"]
    assert done_counts == sorted(done_counts)
    r = client.get(f"{API}/jobs/{job['id']}/result")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    motion = handmotion.loads(r.content, "downloaded result")
    assert motion.num_frames == 8
    assert list(motion.frames) == list(range(0, 15, 2))
    assert motion.image_size == (160, 120)
    # Noise has no hands: a valid result with nobody present, not an error.
    assert not motion.hands["left"].present.any() and not motion.hands["right"].present.any()
    listed = client.get(f"{API}/jobs").json()["jobs"]
    assert listed[0]["id"] == job["id"]


def test_upload_of_sample_clip_finds_hands(client):
    sample = REPO / "assets" / "samples" / "two_hands.mp4"
    if not sample.exists():
        pytest.skip("assets/samples/two_hands.mp4 is not rendered in this checkout yet")
    r = _upload(client, sample, {"stride": 6})
    assert r.status_code == 201, r.text
    job = wait_for(client, r.json()["id"], ("done", "failed"), timeout=300)
    assert job["state"] == "done", job
    motion = handmotion.loads(client.get(f"{API}/jobs/{job['id']}/result").content)
    assert motion.hands["left"].present.mean() > 0.5 and motion.hands["right"].present.mean() > 0.5


def test_submit_by_allowed_path(client, media):
    r = client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]), "options": {"frame_end": 6}})
    assert r.status_code == 201, r.text
    job = wait_for(client, r.json()["id"], ("done", "failed"))
    assert job["state"] == "done", job
    assert job["frames_total"] == 6
    assert handmotion.loads(client.get(f"{API}/jobs/{job['id']}/result").content).num_frames == 6


@pytest.mark.parametrize("key", ["secret", "dotdot", "symlink", "dirlink", "relative", "etc"])
def test_path_outside_allowed_dirs_refused(client, media, key):
    path = {
        "secret": str(media["secret"]),
        "dotdot": str(media["allowed"]) + "/../outside/secret.mp4",
        "symlink": str(media["allowed"] / "escape.mp4"),
        "dirlink": str(media["allowed"] / "outdir" / "secret.mp4"),
        "relative": "allowed/short clip.mp4",
        "etc": "/etc/passwd",
    }[key]
    msg = _error(client.post(f"{API}/jobs/from-path", json={"path": path}), 403, "path_not_allowed")
    assert "--allow-dir" in msg or "allowed" in msg


def test_missing_file_in_allowed_dir_404(client, media):
    _error(client.post(f"{API}/jobs/from-path", json={"path": str(media["allowed"] / "nope.mp4")}), 404, "not_found")


def test_option_paths_must_be_allowed_too(client, media):
    r = client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]),
                                                   "options": {"engine": "lagc", "checkpoint": "/etc/shadow"}})
    _error(r, 403, "path_not_allowed")


@pytest.mark.parametrize("key, status, code", [
    ("corrupt", 422, "invalid_video"), ("empty", 422, "invalid_video"), ("junk", 415, "unsupported_media"),
])
def test_bad_video_clear_4xx(server, client, media, key, status, code):
    before = set(os.listdir(server.state_dir / "uploads"))
    msg = _error(_upload(client, media[key]), status, code)
    assert media[key].name in msg
    msg = _error(client.post(f"{API}/jobs/from-path", json={"path": str(media[key])}), status, code)
    assert media[key].name in msg
    assert set(os.listdir(server.state_dir / "uploads")) == before  # refused uploads leave nothing


def test_limits_on_frames_and_resolution(client, media):
    msg = _error(client.post(f"{API}/jobs/from-path", json={"path": str(media["too_many"])}), 413, "too_large")
    assert str(MAX_FRAMES) in msg
    msg = _error(client.post(f"{API}/jobs/from-path", json={"path": str(media["too_big"])}), 413, "too_large")
    assert "704x480" in msg and "640x480" in msg
    # The frame limit counts frames to process: a stride brings the same video under it.
    r = client.post(f"{API}/jobs/from-path", json={"path": str(media["too_many"]), "options": {"stride": 2}})
    assert r.status_code == 201, r.text
    assert client.delete(f"{API}/jobs/{r.json()['id']}").status_code == 204


def test_oversized_upload_413_and_nothing_kept(server, client, media):
    before = set(os.listdir(server.state_dir / "uploads"))
    big = os.urandom(3 * 1024 * 1024)
    r = client.post(f"{API}/jobs", files={"file": ("big.mp4", big, "video/mp4")})
    _error(r, 413, "too_large")

    def chunked():  # no Content-Length: the limit must hold while streaming
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]
        yield b"\r\n--B--\r\n"

    r = client.post(f"{API}/jobs", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=B"})
    _error(r, 413, "too_large")
    assert set(os.listdir(server.state_dir / "uploads")) == before


@pytest.mark.parametrize("options, needle", [
    ({"strid": 2}, "strid"), ({"stride": 0}, "stride"), ({"engine": "magic"}, "engine"),
    ({"frame_start": 9, "frame_end": 3}, "frame_end"), ("[1, 2]", "JSON object"), ("{not json", "JSON"),
])
def test_bad_options_422(client, media, options, needle):
    data = {"options": options if isinstance(options, str) else json.dumps(options)}
    r = client.post(f"{API}/jobs", files={"file": ("a.mp4", media["short"].read_bytes(), "video/mp4")}, data=data)
    assert needle in _error(r, 422, "invalid_request")
    if not isinstance(options, str):
        r = client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]), "options": options})
        assert needle in _error(r, 422, "invalid_request")


def test_malformed_requests_4xx(client):
    _error(client.post(f"{API}/jobs", content=b"raw", headers={"Content-Type": "video/mp4"}), 415, "unsupported_media")
    r = client.post(f"{API}/jobs", content=b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
                    headers={"Content-Type": "multipart/form-data; boundary=B"})
    _error(r, 400, "invalid_request")
    r = client.post(f"{API}/jobs", files={"video": ("a.mp4", b"x", "video/mp4")})
    assert "video" in _error(r, 400, "invalid_request")
    _error(client.post(f"{API}/jobs/from-path", content=b"{", headers={"Content-Type": "application/json"}),
           422, "invalid_request")
    _error(client.post(f"{API}/jobs/from-path", json={"path": "/x", "extra": 1}), 422, "invalid_request")
    _error(client.post(f"{API}/jobs/from-path", content=b"\xff", headers={"Content-Type": "application/json"}),
           400, "invalid_request")
    r = client.put(f"{API}/jobs/{'0' * 32}")
    _error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET"  # every method of that path, not just the first route's
    r = client.put(f"{API}/jobs/from-path")  # a literal path, not a job id
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_unknown_job_404(client):
    jid = "0123456789abcdef" * 2
    _error(client.get(f"{API}/jobs/{jid}"), 404, "not_found")
    _error(client.get(f"{API}/jobs/{jid}/result"), 404, "not_found")
    _error(client.post(f"{API}/jobs/{jid}/cancel"), 404, "not_found")
    _error(client.post(f"{API}/jobs/{jid}/resubmit"), 404, "not_found")
    _error(client.delete(f"{API}/jobs/{jid}"), 404, "not_found")
    _error(client.get(f"{API}/nothing-here"), 404, "not_found")


def test_cancel_running_job(client, media):
    r = client.post(f"{API}/jobs/from-path", json={"path": str(media["long"])})
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    wait_for(client, jid, ("running",), timeout=120)
    r = client.post(f"{API}/jobs/{jid}/cancel")
    assert r.status_code == 200 and r.json()["id"] == jid
    job = wait_for(client, jid, ("cancelled", "done", "failed"), timeout=120)
    assert job["state"] == "cancelled", job
    assert job["frames_done"] < job["frames_total"] or job["frames_total"] == 0
    assert "cancelled" in _error(client.get(f"{API}/jobs/{jid}/result"), 409, "job_cancelled")
    # Cancel is idempotent on a finished job.
    assert client.post(f"{API}/jobs/{jid}/cancel").json()["state"] == "cancelled"
    # A cancelled job can be run again, from the same source and options.
    r = client.post(f"{API}/jobs/{jid}/resubmit")
    assert r.status_code == 201 and r.json()["resubmit_of"] == jid and r.json()["id"] != jid
    assert client.delete(f"{API}/jobs/{r.json()['id']}").status_code == 204


def test_cancel_queued_job_and_delete_removes_files(server, client, media):
    first = client.post(f"{API}/jobs/from-path", json={"path": str(media["long"])}).json()
    second = _upload(client, media["short"]).json()  # waits behind the first (one worker)
    assert client.get(f"{API}/jobs/{second['id']}").json()["state"] == "queued"
    assert (server.state_dir / "uploads" / second["id"]).is_dir()
    assert client.post(f"{API}/jobs/{second['id']}/cancel").json()["state"] == "cancelled"
    # The job ended: its upload goes at once (the server runs without --keep-uploads).
    assert not (server.state_dir / "uploads" / second["id"]).exists()
    assert client.delete(f"{API}/jobs/{second['id']}").status_code == 204
    assert not (server.state_dir / "uploads" / second["id"]).exists()
    _error(client.get(f"{API}/jobs/{second['id']}"), 404, "not_found")
    # Deleting a running job cancels it first.
    assert client.delete(f"{API}/jobs/{first['id']}").status_code == 204
    _error(client.get(f"{API}/jobs/{first['id']}"), 404, "not_found")
    # A done job's result file goes with it.
    done = wait_for(client, _upload(client, media["short"], {"stride": 5}).json()["id"], ("done", "failed"))
    assert done["state"] == "done", done
    result = server.state_dir / "results" / f"{done['id']}.npz"
    assert result.is_file()
    assert client.delete(f"{API}/jobs/{done['id']}").status_code == 204
    assert not result.exists() and not (server.state_dir / "uploads" / done["id"]).exists()


def test_concurrent_clients(server, media):
    errors: list[str] = []
    job_ids: list[str] = []

    def poller(n: int):
        with server.client() as c:
            for _ in range(n):
                for path in (f"{API}/jobs", f"{API}/health"):
                    r = c.get(path)
                    if r.status_code != 200:
                        errors.append(f"{path}: {r.status_code} {r.text}")

    def submitter():
        with server.client() as c:
            r = _upload(c, media["short"], {"stride": 3})
            if r.status_code != 201:
                errors.append(f"upload: {r.status_code} {r.text}")
            else:
                job_ids.append(r.json()["id"])

    threads = [threading.Thread(target=poller, args=(15,)) for _ in range(8)]
    threads += [threading.Thread(target=submitter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert len(job_ids) == 3 and len(set(job_ids)) == 3
    with server.client() as c:
        results = []
        for jid in job_ids:
            job = wait_for(c, jid, ("done", "failed"))
            assert job["state"] == "done", job
            results.append(handmotion.loads(c.get(f"{API}/jobs/{jid}/result").content))
    # Same input and options -> the same motion, whatever ran beside it.
    assert all(m.num_frames == results[0].num_frames == 5 for m in results)


def test_internal_error_is_500_and_server_survives(server, client, media):
    """A broken state folder (here: 'uploads' replaced by a file) makes the upload
    handler fail unexpectedly; the answer is a short 500 and the server lives on."""
    uploads = server.state_dir / "uploads"
    moved = server.state_dir / "uploads.moved"
    uploads.rename(moved)
    uploads.write_bytes(b"not a folder")
    try:
        r = _upload(client, media["short"])
        msg = _error(r, 500, "internal")
        assert "Traceback" not in msg and len(msg) < 200
    finally:
        uploads.unlink()
        moved.rename(uploads)
    assert server.alive()
    assert "Traceback" in server.log()  # logged for the developer
    r = _upload(client, media["short"], {"stride": 5})
    assert r.status_code == 201, r.text
    assert wait_for(client, r.json()["id"], ("done", "failed"))["state"] == "done"


def test_second_server_on_same_state_dir_refused(server):
    import subprocess
    import sys

    from test_server_harness import free_port

    env = dict(os.environ, LAGC_HAND_TOKEN_FILE=str(server.token_file))
    r = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "serve", "--port", str(free_port()),
                        "--state-dir", str(server.state_dir)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "already using the state folder" in r.stderr
    assert server.alive()
    with server.client() as c:
        assert c.get(f"{API}/jobs").status_code == 200  # the first server's jobs were not 'interrupted'
        assert not any(j["state"] == "interrupted" for j in c.get(f"{API}/jobs").json()["jobs"])


# --------------------------------------------------------------------------- issue 16: checks before queueing, privacy, clear answers


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def test_unrunnable_options_refused_before_queueing(server, client, media):
    """Options this installation cannot run are one 422 at submit, not a job that
    fails minutes later (CUDA on a CPU-only build; the lagc engine without a checkpoint)."""
    before = [j["id"] for j in client.get(f"{API}/jobs").json()["jobs"]]
    uploads_before = set(os.listdir(server.state_dir / "uploads"))
    # Without the lagc module in this build the message says so instead of asking for a checkpoint.
    why = "checkpoint" if "lagc" in client.get(f"{API}/health").json()["engines"] else "not part of"
    msg = _error(client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]),
                                                             "options": {"engine": "lagc"}}), 422, "engine_unavailable")
    assert why in msg
    msg = _error(_upload(client, media["short"], {"engine": "lagc"}), 422, "engine_unavailable")
    assert why in msg
    missing = media["allowed"] / "no_such_checkpoint.pt"
    msg = _error(client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]), "options": {
        "engine": "lagc", "checkpoint": str(missing)}}), 422, "engine_unavailable")
    assert ("not a file" if why == "checkpoint" else why) in msg
    if not _cuda_available():
        msg = _error(client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]),
                                                                 "options": {"device": "cuda"}}), 422, "device_unavailable")
        assert "cuda" in msg.lower()
        _error(_upload(client, media["short"], {"device": "cuda"}), 422, "device_unavailable")
    assert [j["id"] for j in client.get(f"{API}/jobs").json()["jobs"]] == before  # nothing was queued
    assert set(os.listdir(server.state_dir / "uploads")) == uploads_before


def test_state_is_private_and_uploads_go_when_jobs_end(server, client, media):
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(server.state_dir) == 0o700
    assert mode(server.state_dir / "uploads") == 0o700 and mode(server.state_dir / "results") == 0o700
    assert mode(server.state_dir / "jobs.sqlite3") == 0o600
    for extra in ("jobs.sqlite3-wal", "jobs.sqlite3-shm"):
        if (server.state_dir / extra).exists():
            assert mode(server.state_dir / extra) == 0o600, extra
    blocker = client.post(f"{API}/jobs/from-path", json={"path": str(media["long"])}).json()
    queued = _upload(client, media["short"], {"stride": 5}).json()  # waits behind the blocker (one worker)
    folder = server.state_dir / "uploads" / queued["id"]
    assert mode(folder) == 0o700
    files = list(folder.iterdir())
    assert len(files) == 1 and mode(files[0]) == 0o600
    client.post(f"{API}/jobs/{blocker['id']}/cancel")
    done = wait_for(client, queued["id"], ("done", "failed"))
    assert done["state"] == "done", done
    assert mode(server.state_dir / "results" / f"{done['id']}.npz") == 0o600
    assert not folder.exists()  # the job ended: the video is not kept
    # Resubmitting needs the video, and says so clearly.
    msg = _error(client.post(f"{API}/jobs/{done['id']}/resubmit"), 404, "not_found")
    assert "--keep-uploads" in msg


def test_result_of_failed_job_says_it_failed(client, media):
    no_model = media["allowed"] / "no_mano_here"
    no_model.mkdir(exist_ok=True)
    r = client.post(f"{API}/jobs/from-path", json={"path": str(media["short"]),
                                                   "options": {"stride": 5, "hand_model": str(no_model)}})
    assert r.status_code == 201, r.text
    job = wait_for(client, r.json()["id"], ("done", "failed"))
    assert job["state"] == "failed", job
    msg = _error(client.get(f"{API}/jobs/{job['id']}/result"), 409, "job_failed")
    assert "failed" in msg and job["error"]["message"] in msg and "once it is done" not in msg


def test_malformed_json_body_says_so(client):
    msg = _error(client.post(f"{API}/jobs/from-path", content=b'{"path": ', headers={"Content-Type": "application/json"}),
                 422, "invalid_request")
    assert "not valid JSON" in msg and "JSON decode error" not in msg


def test_busy_port_fails_before_ready(server, tmp_path):
    """A second server on a port in use exits non-zero with a clear message and
    never claims to be ready."""
    import subprocess
    import sys

    env = dict(os.environ, LAGC_HAND_TOKEN_FILE=str(tmp_path / "token"))
    r = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "serve", "--port", str(server.port),
                        "--state-dir", str(tmp_path / "state")], env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"cannot listen on 127.0.0.1:{server.port}" in out and "--port" in out
    assert "Address already in use" in out
    assert "server ready" not in out  # the port is checked before anything claims to be ready
    assert server.alive()
