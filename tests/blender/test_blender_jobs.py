"""The add-on's backend client, job runner and reconstruction operators against
real HTTP servers on 127.0.0.1: a stdlib server speaking the v1 API
(``api_server.py``) and, where the backend package is installed, the real
``lagc-hand serve`` process."""
from __future__ import annotations

import importlib
import os
import time

import numpy as np
import pytest

import bpy
from api_server import ApiServer
from addon_paths import REPO

import lagc_synth
from lagc_hand_blender import client as client_mod
from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.jobs import JobRunner

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def motion_bytes():
    return hm.dumps(lagc_synth.make_motion(T=12, seed=7))


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(256))  # the stdlib server never decodes it
    return str(path)


def _run(server_url, token_path, video, result_dir, **kw):
    runner = JobRunner(client_mod.Client(server_url, token_path), video, {"engine": "mediapipe"}, str(result_dir),
                       poll_interval=0.01, **kw)
    seen = []
    runner.start()
    deadline = time.monotonic() + 30
    while not runner.status().finished and time.monotonic() < deadline:
        seen.append(runner.status())
        time.sleep(0.002)
    final = runner.wait(10)
    return final, seen


def test_job_done_progress_and_validated_result(token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes, frames_total=6, step=2) as srv:
        final, seen = _run(srv.url, token_file, video, tmp_path / "results")
    assert final.state == "done", final.message
    assert final.progress == 1.0
    states = [s.state for s in seen]
    assert "running" in states
    fractions = [s.progress for s in seen if s.state == "running"]
    assert fractions == sorted(fractions) and 0 < max(fractions) <= 1
    assert any("/6" in s.describe() for s in seen)
    loaded = hm.load(final.result_path)
    assert loaded.num_frames == 12
    assert os.listdir(tmp_path / "results") == [os.path.basename(final.result_path)]  # no temp leftovers


def test_backend_failure_message_reaches_the_user(token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes, fail_message="the video has no decodable frames") as srv:
        final, _ = _run(srv.url, token_file, video, tmp_path)
    assert final.state == "failed"
    assert "the video has no decodable frames" in final.message


def test_cancel_stops_the_job_on_the_server(token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes, endless=True, frames_total=1000, step=1) as srv:
        runner = JobRunner(client_mod.Client(srv.url, token_file), video, {}, str(tmp_path), poll_interval=0.01)
        runner.start()
        deadline = time.monotonic() + 10
        while runner.status().state != "running" and time.monotonic() < deadline:
            time.sleep(0.005)
        runner.cancel()
        final = runner.wait(10)
        assert final.state == "cancelled"
        assert srv.cancelled == [final.job_id]
        assert srv.jobs[final.job_id]["state"] == "cancelled"


def test_wrong_or_missing_token(video, tmp_path, motion_bytes):
    bad = tmp_path / "bad_token"
    bad.write_text("not-the-token")
    with ApiServer(TOKEN, motion_bytes) as srv:
        final, _ = _run(srv.url, str(bad), video, tmp_path)
        assert final.state == "failed" and "refused the token" in final.message
        final, _ = _run(srv.url, str(tmp_path / "nowhere" / "token"), video, tmp_path)
        assert final.state == "failed" and "No backend token" in final.message
        assert srv.jobs == {}


def test_backend_down(token_file, video, tmp_path):
    with ApiServer(TOKEN) as srv:
        url = srv.url  # a port that is closed once the server stops
    final, _ = _run(url, token_file, video, tmp_path)
    assert final.state == "failed" and "not reachable" in final.message


def test_missing_video_and_damaged_result(token_file, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes) as srv:
        final, _ = _run(srv.url, token_file, str(tmp_path / "missing.mp4"), tmp_path)
        assert final.state == "failed" and "does not exist" in final.message
        assert srv.jobs == {}
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 64)
    with ApiServer(TOKEN, motion_bytes[: len(motion_bytes) // 2]) as srv:
        final, _ = _run(srv.url, token_file, str(video), tmp_path / "res")
    assert final.state == "failed" and "damaged result" in final.message
    assert not os.path.exists(tmp_path / "res") or os.listdir(tmp_path / "res") == []


def test_path_not_allowed_falls_back_to_upload(token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes, allowed_dir=str(tmp_path / "elsewhere")) as srv:
        final, _ = _run(srv.url, token_file, video, tmp_path / "r")
        assert final.state == "done", final.message
        assert srv.uploads == [("clip.mp4", os.path.getsize(video), {"engine": "mediapipe"})]


def test_only_loopback_urls():
    with pytest.raises(client_mod.ClientError, match="not a local"):
        client_mod.Client("http://192.0.2.1:8765")
    with pytest.raises(client_mod.ClientError, match="not a local"):
        client_mod.Client("https://localhost:8765")
    assert client_mod.Client("http://localhost:8765/").base_url == "http://localhost:8765"


# ----------------------------------------------------------------------------- operators in bpy


def _configure(ext, url, token_path, video, result_dir):
    prefs = bpy.context.preferences.addons[ext.__name__].preferences
    prefs.backend_url, prefs.token_file, prefs.result_dir = url, token_path, str(result_dir)
    s = bpy.context.scene.lagc_hand
    s.source_type, s.video_path = 'FILE', video


def test_reconstruct_operator_imports_the_result(clean, token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes) as srv:
        _configure(clean, srv.url, token_file, video, tmp_path / "res")
        bpy.context.scene.lagc_hand.smoothing = 0.5
        assert bpy.ops.lagc_hand.reconstruct() == {'FINISHED'}
        (job,) = srv.jobs.values()
    assert job["options"]["smoothing"] == 0.5 and job["source"] == "clip.mp4"
    assert {"clip_hand.L", "clip_hand.R", "clip_camera"} <= set(bpy.data.objects.keys())
    wm = bpy.context.window_manager
    assert wm.lagc_hand_status.startswith("Done") and not wm.lagc_hand_running
    assert bpy.ops.lagc_hand.reconstruct.poll()  # ready for the next job


def test_reconstruct_operator_errors_leave_scene_empty(clean, token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes, fail_message="no hands could be decoded") as srv:
        _configure(clean, srv.url, token_file, video, tmp_path)
        with pytest.raises(RuntimeError, match="no hands could be decoded"):
            bpy.ops.lagc_hand.reconstruct()
        url = srv.url
    with pytest.raises(RuntimeError, match="not reachable"):
        bpy.ops.lagc_hand.reconstruct()  # the server is gone now
    bpy.context.scene.lagc_hand.video_path = str(tmp_path / "gone.mp4")
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.lagc_hand.reconstruct()
    assert len(bpy.data.objects) == 0 and len(bpy.data.actions) == 0
    assert not bpy.context.window_manager.lagc_hand_running
    assert url.startswith("http://127.0.0.1:")


def test_timer_ticks_show_progress_without_blocking(clean, token_file, video, tmp_path, motion_bytes):
    """The modal operator's per-timer-tick path: the main thread keeps running while
    the worker talks to the backend, progress reaches the panel, the result is
    applied on the main thread."""
    operators = importlib.import_module(f"{clean.__name__}.blender.operators")
    wm = bpy.context.window_manager
    with ApiServer(TOKEN, motion_bytes, frames_total=40, step=4) as srv:
        runner = JobRunner(client_mod.Client(srv.url, token_file), video, {}, str(tmp_path), poll_interval=0.02)
        runner.start()
        ticks, progress = 0, []
        while not operators.poll_job(bpy.context, runner).finished:
            ticks += 1
            progress.append(wm.lagc_hand_progress)
            assert wm.lagc_hand_running
            time.sleep(0.01)
        level, message, result = operators.apply_job_result(bpy.context, runner, video)
    assert ticks > 3  # the main thread was never blocked by the job
    assert progress == sorted(progress) and max(progress) > 0
    assert level == 'INFO' and "imported left, right" in message
    assert set(result.armatures) == {"left", "right"}
    assert not wm.lagc_hand_running and wm.lagc_hand_progress == 100.0


def test_cancelled_tick_path_creates_nothing(clean, token_file, video, tmp_path, motion_bytes):
    operators = importlib.import_module(f"{clean.__name__}.blender.operators")
    with ApiServer(TOKEN, motion_bytes, endless=True, frames_total=100, step=1) as srv:
        runner = JobRunner(client_mod.Client(srv.url, token_file), video, {}, str(tmp_path), poll_interval=0.02)
        runner.start()
        while operators.poll_job(bpy.context, runner).state != "running":
            time.sleep(0.01)
        runner.cancel()  # what Esc / the Cancel button do
        while not operators.poll_job(bpy.context, runner).finished:
            time.sleep(0.01)
        level, message, result = operators.apply_job_result(bpy.context, runner, video)
        assert srv.cancelled
    assert level == 'WARNING' and "cancelled" in message and result is None
    assert len(bpy.data.objects) == 0


def test_loading_a_file_cancels_a_running_job(clean, token_file, video, tmp_path, motion_bytes):
    operators = importlib.import_module(f"{clean.__name__}.blender.operators")
    with ApiServer(TOKEN, motion_bytes, endless=True, frames_total=100, step=1) as srv:
        runner = JobRunner(client_mod.Client(srv.url, token_file), video, {}, str(tmp_path), poll_interval=0.02)
        operators._active_runner = runner.start()  # what the modal operator holds while it runs
        assert not bpy.ops.lagc_hand.reconstruct.poll()
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)  # drops modal handlers
        assert runner.wait(10).state == "cancelled" and srv.cancelled == [runner.status().job_id]
    assert operators._active_runner is None and bpy.ops.lagc_hand.reconstruct.poll()


def test_check_connection_operator(clean, token_file, tmp_path):
    with ApiServer(TOKEN) as srv:
        _configure(clean, srv.url, token_file, "", tmp_path)
        assert bpy.ops.lagc_hand.check_connection() == {'FINISHED'}
        bad = tmp_path / "other_token"
        bad.write_text("nope")
        _configure(clean, srv.url, str(bad), "", tmp_path)
        with pytest.raises(RuntimeError, match="refused the token"):
            bpy.ops.lagc_hand.check_connection()


def test_start_backend_operator_reports_a_bad_command(clean):
    prefs = bpy.context.preferences.addons[clean.__name__].preferences
    prefs.backend_command = "/nonexistent/lagc-hand serve"
    with pytest.raises(RuntimeError, match="Cannot start the backend"):
        bpy.ops.lagc_hand.start_backend()


# ----------------------------------------------------------------------------- the real backend


def _noise_video(path, frames: int, seed: int) -> str:
    """A 160x120, 30 fps mp4 of random noise (no hands) with ``frames`` frames."""
    cv2 = pytest.importorskip("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return str(path)


def test_against_the_real_server(clean, tmp_path):
    launcher = pytest.importorskip("lagc_hand.server.launcher", reason="the backend package is not installed here")
    video = _noise_video(tmp_path / "noise.mp4", 6, seed=0)
    server = launcher.ServerProcess(tmp_path / "srv").start()
    try:
        _configure(clean, server.url, str(server.token_file), video, tmp_path / "res")
        assert bpy.ops.lagc_hand.check_connection() == {'FINISHED'}
        bad = tmp_path / "bad"
        bad.write_text("wrong")
        client = client_mod.Client(server.url, str(bad))
        with pytest.raises(client_mod.AuthError):
            client.jobs()
        runner = JobRunner(client_mod.Client(server.url, str(server.token_file)), video, {}, str(tmp_path / "res"),
                           poll_interval=0.1).start()
        final = runner.wait(240)
        assert final.finished, f"the job did not finish: {final}"
        print("real server job:", final.state, final.message)
        job = client_mod.Client(server.url, str(server.token_file)).job(final.job_id)
        # Whatever the pipeline makes of noise, the add-on must agree with the server.
        if final.state == "done":
            assert job["state"] == "done" and hm.load(final.result_path).num_frames >= 0
        else:
            assert final.state == "failed" and job["state"] in ("failed", "interrupted")
            assert (job.get("error") or {}).get("message", "") in final.message
    finally:
        server.stop()


def test_start_backend_button_then_check_connection(clean, tmp_path, monkeypatch):
    launcher = pytest.importorskip("lagc_hand.server.launcher", reason="the backend package is not installed here")
    import sys

    operators = importlib.import_module(f"{clean.__name__}.blender.operators")
    port = launcher.free_port()
    # The started server and the add-on's default token path agree through the environment.
    monkeypatch.setenv("LAGC_HAND_TOKEN_FILE", str(tmp_path / "config" / "token"))
    monkeypatch.setenv("LAGC_HAND_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LAGC_HAND_STATE_DIR", str(tmp_path / "state"))
    prefs = bpy.context.preferences.addons[clean.__name__].preferences
    prefs.backend_url, prefs.token_file = f"http://127.0.0.1:{port}", ""
    prefs.backend_command = (f'"{sys.executable}" -m lagc_hand.cli serve --host 127.0.0.1 --port {port} '
                             f'--state-dir "{tmp_path / "state"}"')
    with pytest.raises(RuntimeError, match="not reachable"):
        bpy.ops.lagc_hand.check_connection()  # nothing runs yet
    assert bpy.ops.lagc_hand.start_backend() == {'FINISHED'}
    proc = operators._backend_processes[-1]["proc"]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert bpy.ops.lagc_hand.check_connection() == {'FINISHED'}
                break
            except RuntimeError:
                assert proc.poll() is None, "the backend process exited"
                assert time.monotonic() < deadline, "the backend did not come up in 120 s"
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(30)


# ----------------------------------------------------------------------------- long and multibyte names (issue 16.1)


@pytest.mark.parametrize("stem", ["v" * 247, "漢" * 82], ids=["ascii247", "cjk82"])
def test_long_video_names_import_end_to_end(clean, token_file, tmp_path, motion_bytes, stem):
    """A video name at the filesystem's limit: the result file is named within
    limits, keeps the job id and a readable prefix, and the hands are imported."""
    video = tmp_path / f"{stem}.mp4"
    assert len(video.name.encode("utf-8")) >= 250
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(64))
    with ApiServer(TOKEN, motion_bytes) as srv:
        _configure(clean, srv.url, token_file, str(video), tmp_path / "res")
        assert bpy.ops.lagc_hand.reconstruct() == {'FINISHED'}
        (job_id,) = srv.jobs
    (name,) = os.listdir(tmp_path / "res")
    assert len(name.encode("utf-8")) < 100 and name.endswith(f"_{job_id[:8]}.npz")
    assert name.startswith(stem[:10])
    assert hm.load(str(tmp_path / "res" / name)).num_frames == 12
    sides = {ob["lagc_side"] for ob in bpy.data.objects if "lagc_side" in ob.keys()}
    assert sides == {"left", "right"}
    arms = [ob for ob in bpy.data.objects if ob.type == 'ARMATURE']
    assert len(arms) == 2 and all(ob.name.startswith(stem[:5]) for ob in arms)
    assert bpy.context.window_manager.lagc_hand_status.startswith("Done")


def test_short_names_are_unchanged_and_long_ones_stay_distinct():
    from lagc_hand_blender.core import names

    assert names.result_file_name("clip", "0123456789abcdef") == "clip_01234567.npz"
    a, b = names.short_stem("x" * 200 + "a", 40), names.short_stem("x" * 200 + "b", 40)
    assert a != b and len(a) == 40 and a.startswith("x" * 30)
    cut = names.utf8_prefix("漢字" * 10, 7)  # 7 bytes: two whole 3-byte characters, never half of one
    assert cut == "漢字"
    assert names.result_file_name("a/b:c", "ffffffffff") == "a_b_c_ffffffff.npz"


def test_result_write_failure_keeps_the_job_and_says_so(token_file, video, tmp_path, motion_bytes):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the results folder should be")
    with ApiServer(TOKEN, motion_bytes) as srv:
        final, _ = _run(srv.url, token_file, video, blocker / "results")
        assert final.state == "failed"
        assert final.job_id and final.job_id in final.message and "stays on the backend" in final.message
        assert srv.jobs[final.job_id]["state"] == "done"
        # Nothing is lost: the result can still be fetched.
        assert client_mod.Client(srv.url, token_file).result(final.job_id) == motion_bytes


# ----------------------------------------------------------------------------- item 8: frame range, paths, undo


def _motion_of_range(options: dict) -> bytes:
    """What the backend returns for a frame range: source frames start..end-1 (0-based)."""
    start, end = options.get("frame_start", 0), options.get("frame_end", 12)
    motion = lagc_synth.make_motion(T=end - start, seed=3)
    motion.frames = np.arange(start, end, dtype=np.int64)
    return hm.dumps(motion)


def _key_frames(ext, ob) -> np.ndarray:
    compat = importlib.import_module(f"{ext.__name__}.blender.compat")
    curves = compat.action_fcurves(ob.animation_data.action)
    return np.array(sorted({kp.co[0] for fc in curves if "rotation" in fc.data_path for kp in fc.keyframe_points}))


def test_frame_range_in_blender_convention(clean, token_file, video, tmp_path):
    """First 10, Last 40 in the panel: the API gets frames 9..39 (start 9, exclusive end 40)
    and the keys land on scene frames 10..40, where the user asked for them."""
    props = importlib.import_module(f"{clean.__name__}.blender.props")
    assert props.api_frame_range(10, 40) == (9, 40)
    assert props.api_frame_range(1, 1) == (0, 1)
    for bad in ((0, 5), (6, 5)):
        with pytest.raises(ValueError):
            props.api_frame_range(*bad)
    with ApiServer(TOKEN, result_for=_motion_of_range) as srv:
        _configure(clean, srv.url, token_file, video, tmp_path / "res")
        s = bpy.context.scene.lagc_hand
        s.use_frame_range, s.frame_start, s.frame_end = True, 10, 40
        assert bpy.ops.lagc_hand.reconstruct() == {'FINISHED'}
        (job,) = srv.jobs.values()
        assert (job["options"]["frame_start"], job["options"]["frame_end"]) == (9, 40)
        right = bpy.data.objects["clip_hand.R"]
        frames = _key_frames(clean, right)
        assert frames[0] == 10 and frames[-1] == 40
        scene = bpy.context.scene
        assert (scene.frame_start, scene.frame_end) == (10, 40)
        s.frame_start, s.frame_end = 41, 40
        with pytest.raises(RuntimeError, match="empty"):
            bpy.ops.lagc_hand.reconstruct()
        assert len(srv.jobs) == 1


def test_path_properties_accept_blend_relative_paths(clean):
    """Blender 5.0 warned 'video_path: does not support blend relative "//" prefix'."""
    import warnings

    prefs = bpy.context.preferences.addons[clean.__name__].preferences
    s = bpy.context.scene.lagc_hand
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.video_path = "//clip.mp4"
        s.checkpoint = "//model.pt"
        s.calibration = "//cam.yaml"
        prefs.token_file, prefs.result_dir = "//token", "//results/"
        prefs.token_file = prefs.result_dir = ""
    assert s.video_path == "//clip.mp4"


def test_reconstruct_is_undoable_but_not_redone(clean):
    op = importlib.import_module(f"{clean.__name__}.blender.operators").LAGCHAND_OT_reconstruct
    # The import step becomes one undo step; no 'REGISTER' (redo would upload again).
    assert 'UNDO' in op.bl_options and 'REGISTER' not in op.bl_options


# ----------------------------------------------------------------------------- a restarting backend (issue 16.2)


def _wait_for(runner, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = runner.status()
        seen.append(status)
        if predicate(status):
            return seen
        time.sleep(0.005)
    raise AssertionError(f"timed out; last status {runner.status()}")


def test_polling_survives_a_backend_restart_and_reattaches(token_file, video, tmp_path, motion_bytes):
    srv = ApiServer(TOKEN, motion_bytes, frames_total=60, step=1).__enter__()
    runner = JobRunner(client_mod.Client(srv.url, token_file), video, {}, str(tmp_path / "res"),
                       poll_interval=0.02).start()
    _wait_for(runner, lambda s: s.state == "running" and s.frames_done >= 3)
    srv.__exit__()  # the backend goes away mid-job
    seen = _wait_for(runner, lambda s: s.state == "reconnecting")
    time.sleep(1.5)  # a few failed retries
    assert runner.status().state == "reconnecting" and "retrying" in runner.status().describe()
    with srv.restarted() as again:  # same port, same jobs: the job carries on
        final = runner.wait(30)
        assert final.state == "done", final.message
        assert list(again.jobs) == [final.job_id]  # re-attached, not uploaded again
    assert hm.load(final.result_path).num_frames == 12
    assert not any(s.finished for s in seen[:-1])


def test_an_unreachable_backend_is_retried_for_a_bounded_time(token_file, video, tmp_path, motion_bytes):
    srv = ApiServer(TOKEN, motion_bytes, endless=True, frames_total=100, step=1).__enter__()
    runner = JobRunner(client_mod.Client(srv.url, token_file), video, {}, str(tmp_path), poll_interval=0.02,
                       reconnect_s=1.5).start()
    _wait_for(runner, lambda s: s.state == "running")
    srv.__exit__()
    t0 = time.monotonic()
    final = runner.wait(30)
    assert 1.4 < time.monotonic() - t0 < 10
    assert final.state == "failed" and "Gave up after 2 s" in final.message
    assert final.job_id[:8] in final.message and "Re-attach" in final.message


def test_an_interrupted_job_is_reported_and_resubmitted(token_file, video, tmp_path, motion_bytes):
    srv = ApiServer(TOKEN, motion_bytes, frames_total=60, step=1).__enter__()
    client = client_mod.Client(srv.url, token_file)
    runner = JobRunner(client, video, {"smoothing": 0.5}, str(tmp_path), poll_interval=0.02).start()
    _wait_for(runner, lambda s: s.state == "running")
    srv.__exit__()
    _wait_for(runner, lambda s: s.state == "reconnecting")
    with srv.restarted(interrupt=True) as again:  # the real backend marks unfinished jobs interrupted
        final = runner.wait(30)
        assert final.state == "failed" and final.job_state == "interrupted"
        assert "Resubmit" in final.message
        new = client.resubmit(final.job_id)
        assert new["resubmit_of"] == final.job_id and new["options"] == {"smoothing": 0.5}
        done = JobRunner(client, video, None, str(tmp_path / "r2"), poll_interval=0.01, job_id=new["id"]).start()
        assert done.wait(30).state == "done"
        assert len(again.jobs) == 2


def test_resubmit_a_failed_job_from_the_panel(clean, token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes, fail_message="the backend stopped") as srv:
        _configure(clean, srv.url, token_file, video, tmp_path / "res")
        with pytest.raises(RuntimeError, match="the backend stopped"):
            bpy.ops.lagc_hand.reconstruct()
        wm = bpy.context.window_manager
        (old_id,) = srv.jobs
        assert wm.lagc_hand_last_job == old_id and wm.lagc_hand_last_job_state == "failed"
        srv.fail_message = None  # whatever broke is fixed
        assert bpy.ops.lagc_hand.resubmit_job(job_id=old_id) == {'FINISHED'}
        new = [j for j in srv.jobs.values() if j.get("resubmit_of") == old_id]
        assert len(new) == 1 and new[0]["state"] == "done"
    assert {"clip_hand.L", "clip_hand.R"} <= set(bpy.data.objects.keys())
    assert bpy.data.objects["clip_camera"].data.background_images[0].clip is not None  # the local video again


def test_recent_jobs_list_and_import_from_it(clean, token_file, video, tmp_path, motion_bytes):
    with ApiServer(TOKEN, motion_bytes) as srv:
        client = client_mod.Client(srv.url, token_file)
        done = JobRunner(client, video, {}, str(tmp_path / "elsewhere"), poll_interval=0.01).start().wait(30)
        assert done.state == "done"
        _configure(clean, srv.url, token_file, "", tmp_path / "res")
        assert bpy.ops.lagc_hand.refresh_jobs() == {'FINISHED'}
        items = bpy.context.window_manager.lagc_hand_jobs
        assert [(i.job_id, i.source, i.state) for i in items] == [(done.job_id, "clip.mp4", "done")]
        assert bpy.ops.lagc_hand.attach_job(job_id=items[0].job_id, source=items[0].source) == {'FINISHED'}
        assert len(srv.jobs) == 1  # imported, not reconstructed again
    assert {"clip_hand.L", "clip_hand.R"} <= set(bpy.data.objects.keys())
    assert os.listdir(tmp_path / "res") == [f"clip_{done.job_id[:8]}.npz"]


def test_real_backend_restarting_mid_job(tmp_path):
    """The real ``lagc-hand serve`` stopped mid-job and started again on the same port
    and state: the runner rides out the downtime, learns the job was interrupted,
    and the resubmitted job runs to the end."""
    launcher = pytest.importorskip("lagc_hand.server.launcher", reason="the backend package is not installed here")
    video = _noise_video(tmp_path / "long_noise.mp4", 900, seed=1)
    server = launcher.ServerProcess(tmp_path / "srv").start()
    try:
        client = client_mod.Client(server.url, str(server.token_file))
        runner = JobRunner(client, video, {}, str(tmp_path / "res"), poll_interval=0.1, reconnect_s=90).start()
        _wait_for(runner, lambda s: s.state == "running" and s.frames_done > 0, timeout=120)
        server.stop()
        _wait_for(runner, lambda s: s.state == "reconnecting", timeout=30)
        server = launcher.ServerProcess(tmp_path / "srv", port=server.port).start()
        final = runner.wait(120)
        print("after the restart:", final.state, final.job_state, final.message)
        assert final.state == "failed" and final.job_state == "interrupted", final
        assert "Resubmit" in final.message
        new = client.resubmit(final.job_id)
        assert new["resubmit_of"] == final.job_id
        again = JobRunner(client, video, None, str(tmp_path / "res"), poll_interval=0.2, job_id=new["id"]).start()
        _wait_for(again, lambda s: s.frames_done > 0 or s.finished, timeout=120)
        again.cancel()  # it runs: enough, no need to detect hands in 900 frames of noise
        assert again.wait(60).state == "cancelled"
    finally:
        server.stop()


# ----------------------------------------------------------------------------- the backend environment (issue 16.6)


VENV = os.path.join(REPO, ".venv")


def test_backend_environment_is_found_and_checked(clean, tmp_path, monkeypatch):
    from lagc_hand_blender import backend_env

    if not os.path.isfile(os.path.join(VENV, "bin", "lagc-hand")):
        pytest.skip("the backend venv has no lagc-hand program")
    assert backend_env.find_executable(VENV) == os.path.join(VENV, "bin", "lagc-hand")
    exe = os.path.join(VENV, "bin", "lagc-hand")
    assert backend_env.find_executable(exe) == exe
    with pytest.raises(backend_env.BackendEnvError, match="no lagc-hand program"):
        backend_env.find_executable(str(tmp_path))
    with pytest.raises(backend_env.BackendEnvError, match="does not exist"):
        backend_env.find_executable(str(tmp_path / "nowhere"))
    assert backend_env.start_argv(["lagc-hand", "serve"], VENV) == [exe, "serve"]
    prefs = bpy.context.preferences.addons[clean.__name__].preferences
    prefs.backend_env = VENV
    assert bpy.ops.lagc_hand.check_backend_env() == {'FINISHED'}
    prefs.backend_env = str(tmp_path)
    with pytest.raises(RuntimeError, match="no lagc-hand program"):
        bpy.ops.lagc_hand.check_backend_env()
    # The default command with lagc-hand on no PATH Blender sees, and no environment set:
    prefs.backend_env, prefs.backend_command = "", "lagc-hand serve"
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="not on the PATH"):
        bpy.ops.lagc_hand.start_backend()


def test_start_backend_reports_an_early_exit_with_its_message(clean, tmp_path, monkeypatch):
    """A second backend on a state folder the first one holds exits at once; the panel
    shows why (not 'backend starting')."""
    launcher = pytest.importorskip("lagc_hand.server.launcher", reason="the backend package is not installed here")
    if not os.path.isfile(os.path.join(VENV, "bin", "lagc-hand")):
        pytest.skip("the backend venv has no lagc-hand program")
    operators = importlib.import_module(f"{clean.__name__}.blender.operators")
    first = launcher.ServerProcess(tmp_path / "srv").start()
    try:
        monkeypatch.setenv("LAGC_HAND_TOKEN_FILE", str(tmp_path / "cfg" / "token"))
        monkeypatch.setenv("LAGC_HAND_CONFIG_DIR", str(tmp_path / "cfg"))
        prefs = bpy.context.preferences.addons[clean.__name__].preferences
        prefs.backend_env = VENV
        prefs.backend_command = (f'lagc-hand serve --host 127.0.0.1 --port {launcher.free_port()} '
                                 f'--state-dir "{first.state_dir}"')
        wm = bpy.context.window_manager
        try:
            bpy.ops.lagc_hand.start_backend()
            started_late = True  # the exit came after the button's own wait: the watcher reports it
        except RuntimeError as exc:
            started_late = False
            assert "exited at once" in str(exc)
        proc = operators._backend_processes[-1]["proc"]
        assert proc.wait(60) != 0
        if started_late:
            assert operators.watch_backends(bpy.context) is None
        assert "exited at once" in wm.lagc_hand_status
        assert "another lagc-hand server is already using the state folder" in wm.lagc_hand_status
    finally:
        first.stop()
