"""Unit tests of the server's pure parts: guards, token file, paths, options,
image headers, frame counting, the SQLite store.  The HTTP behaviour is tested
against the real server process in ``test_server.py``."""
from __future__ import annotations

import dataclasses
import os
import stat

import cv2
import numpy as np
import pytest

from lagc_hand.api import ReconstructOptions
from lagc_hand.server.config import parse_resolution
from lagc_hand.server.frames import header_size
from lagc_hand.server.models import OptionsModel
from lagc_hand.server.probe import frames_to_process, looks_like_video
from lagc_hand.server.security import (
    host_allowed,
    load_or_create_token,
    origin_allowed,
    resolve_allowed_path,
    split_host_header,
)
from lagc_hand.server.store import JobRecord, JobStore, now_iso
from lagc_hand.server.uploads import safe_filename


@pytest.mark.parametrize("value, ok", [
    ("127.0.0.1", True), ("127.0.0.1:8765", True), ("localhost:1", True), ("LOCALHOST", True),
    ("[::1]:8765", True), ("[::1]", True),
    ("evil.com", False), ("127.0.0.1.evil.com", False), ("localhost.evil.com:8765", False),
    ("127.0.0.2", False), ("0.0.0.0:8765", False), ("::1", False), ("127.0.0.1:80x", False),
    ("127.0.0.1:", False), ("[::1", False), ("", False), (None, False), ("127.0.0.1:1234567", False),
])
def test_host_guard(value, ok):
    assert host_allowed(value) is ok


def test_host_guard_extra_host_for_remote_binding():
    assert not host_allowed("192.168.1.5:8765")
    assert host_allowed("192.168.1.5:8765", extra_hosts=("192.168.1.5",))


def test_split_host_header():
    assert split_host_header("[::1]:80") == ("::1", 80)
    assert split_host_header("LocalHost:8765") == ("localhost", 8765)
    assert split_host_header("a:b:c") == ("", None)


@pytest.mark.parametrize("origin, ok", [
    (None, True),
    ("http://127.0.0.1:8765", True), ("http://localhost:8765", True), ("http://[::1]:8765", True),
    ("http://127.0.0.1:3000", False),  # another local web app is not us
    ("http://evil.com", False), ("https://127.0.0.1:8765", False), ("null", False), ("", False),
    ("http://127.0.0.1:8765.evil.com", False), ("http://user@127.0.0.1:8765", False),
    ("http://127.0.0.1", False), ("file://", False),
])
def test_origin_guard(origin, ok):
    assert origin_allowed(origin, 8765) is ok


def test_token_created_private_and_reused(tmp_path):
    path = tmp_path / "cfg" / "sub" / "token"
    t1 = load_or_create_token(path)
    assert len(t1) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_token(path) == t1
    assert load_or_create_token(tmp_path / "other") != t1  # random, not derived
    assert not [p for p in path.parent.iterdir() if p.name != "token"]  # no temp files left
    os.chmod(path, 0o644)  # a loosened file is tightened, not trusted as is
    assert load_or_create_token(path) == t1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_allowed_paths_resolve_symlinks_and_dotdot(tmp_path):
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "a.mp4").write_bytes(b"x")
    (outside / "b.mp4").write_bytes(b"x")
    (allowed / "link.mp4").symlink_to(outside / "b.mp4")
    (allowed / "dirlink").symlink_to(outside)
    (outside / "back.mp4").symlink_to(allowed / "a.mp4")
    dirs = [allowed.resolve()]
    assert resolve_allowed_path(str(allowed / "a.mp4"), dirs) == (allowed / "a.mp4").resolve()
    assert resolve_allowed_path(str(allowed / ".." / "outside" / "b.mp4"), dirs) is None
    assert resolve_allowed_path(str(allowed / "link.mp4"), dirs) is None
    assert resolve_allowed_path(str(allowed / "dirlink" / "b.mp4"), dirs) is None
    # A link from outside into the allowed folder points at an allowed file: fine.
    assert resolve_allowed_path(str(outside / "back.mp4"), dirs) == (allowed / "a.mp4").resolve()
    assert resolve_allowed_path("allowed/a.mp4", dirs) is None  # relative
    assert resolve_allowed_path(str(allowed) + "x/a.mp4", dirs) is None  # prefix is not containment
    assert resolve_allowed_path(str(allowed / "a\x00.mp4"), dirs) is None
    assert resolve_allowed_path(str(allowed / "a.mp4"), []) is None


def test_options_model_matches_reconstruct_options():
    assert set(OptionsModel.model_fields) == {f.name for f in dataclasses.fields(ReconstructOptions)}
    defaults = OptionsModel().to_options()
    assert defaults == ReconstructOptions()


@pytest.mark.parametrize("bad", [
    {"stride": 0}, {"engine": "nope"}, {"frame_start": 5, "frame_end": 5}, {"device": "tpu"},
    {"smoothing": -1}, {"unknown": 1}, {"fov_deg": 200}, {"frame_start": -1},
])
def test_options_model_rejects(bad):
    with pytest.raises(ValueError):
        OptionsModel.model_validate(bad)


def test_frames_to_process():
    assert frames_to_process(100, 0, None, 1) == 100
    assert frames_to_process(100, 0, None, 3) == 34
    assert frames_to_process(100, 10, 20, 2) == 5
    assert frames_to_process(100, 100, None, 1) == 0
    assert frames_to_process(100, 90, 500, 1) == 10


def test_video_signatures():
    assert looks_like_video(b"\x00\x00\x00\x18ftypmp42")
    assert looks_like_video(b"\x1a\x45\xdf\xa3....")
    assert not looks_like_video(b"hello world, not a video")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_header_size_reads_png_and_jpeg(ext):
    img = np.zeros((37, 53, 3), np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    assert header_size(buf.tobytes()) == (53, 37)
    assert header_size(b"\xff\xd8\xff") is None


def test_parse_resolution():
    assert parse_resolution("640x480") == (640, 480)
    for bad in ("640", "x480", "0x10", "axb"):
        with pytest.raises(ValueError):
            parse_resolution(bad)


def test_safe_filename():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\x\\clip one.mp4") == "clip_one.mp4"
    assert safe_filename("...") == "video"


def _record(job_id: str, state: str = "queued") -> JobRecord:
    t = now_iso()
    return JobRecord(id=job_id, state=state, stage="queued", frames_done=0, frames_total=0, fps=0.0,
                     error_code=None, error_message=None, created=t, updated=t, source_name="a.mp4",
                     source_kind="upload", source_path="/x/a.mp4", options={"stride": 2})


def test_store_round_trip_and_interrupt(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    for i, state in enumerate(["queued", "running", "done"]):
        store.insert(_record(f"{i:032x}", state))
    assert [r.id for r in store.list()] == [f"{i:032x}" for i in (2, 1, 0)]  # newest first
    assert store.update(f"{2:032x}", summary={"frames": 3})
    assert store.get(f"{2:032x}").summary == {"frames": 3}
    assert store.get(f"{0:032x}").options == {"stride": 2}
    store.close()
    # A new process opening the same file sees the jobs and interrupts the active ones.
    store = JobStore(tmp_path / "jobs.sqlite3")
    assert sorted(store.mark_interrupted("stopped")) == [f"{0:032x}", f"{1:032x}"]
    assert store.get(f"{1:032x}").state == "interrupted"
    assert store.get(f"{1:032x}").error_message == "stopped"
    assert store.get(f"{2:032x}").state == "done"
    assert store.delete(f"{2:032x}") and store.get(f"{2:032x}") is None
    assert not store.update("f" * 32, state="done")
    with pytest.raises(KeyError):
        store.update(f"{1:032x}", nonsense=1)
    store.close()


def _serve_args(*argv: str):
    import argparse

    from lagc_hand.commands import serve

    p = argparse.ArgumentParser()
    serve.add_arguments(p)
    return serve, p.parse_args(list(argv))


def test_serve_refuses_non_loopback_without_allow_remote(tmp_path):
    from lagc_hand.errors import InputError

    serve, args = _serve_args("--host", "0.0.0.0", "--state-dir", str(tmp_path))
    with pytest.raises(InputError, match="--allow-remote"):
        serve.build_config(args)
    serve, args = _serve_args("--host", "0.0.0.0", "--allow-remote", "--state-dir", str(tmp_path))
    cfg = serve.build_config(args)
    assert cfg.allow_remote and not cfg.is_loopback


@pytest.mark.parametrize("argv, needle", [
    (("--max-resolution", "big"), "--max-resolution"), (("--workers", "0"), "--workers"),
    (("--port", "70000"), "--port"), (("--allow-dir", "/no/such/folder"), "--allow-dir"),
])
def test_serve_bad_arguments(tmp_path, argv, needle):
    from lagc_hand.errors import InputError

    serve, args = _serve_args(*argv, "--state-dir", str(tmp_path))
    with pytest.raises(InputError, match=needle):
        serve.build_config(args)


def test_serve_config_limits(tmp_path):
    serve, args = _serve_args("--state-dir", str(tmp_path), "--max-upload-mb", "1.5", "--max-resolution", "1920x1080",
                              "--allow-dir", str(tmp_path), "--device", "cpu")
    cfg = serve.build_config(args)
    assert cfg.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert (cfg.max_width, cfg.max_height) == (1920, 1080)
    assert cfg.allow_dirs == [tmp_path.resolve()] and cfg.device == "cpu"
