"""A quiet terminal (lagc_hand/quiet.py): real subprocesses, real MediaPipe."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from lagc_hand.quiet import is_native_noise

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "two_hands.mp4"
NATIVE = re.compile(r"^[IW]\d{4} ", re.M)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / ".pyshim"), str(ROOT / "backend"), env.get("PYTHONPATH", "")])
    for k in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(k, None)
    return env


def test_native_noise_lines():
    assert is_native_noise(b"W0000 00:00:1796385554.826072    5756 inference_feedback_manager.cc:114] Feedback")
    assert is_native_noise(b"I1204 12:34:56.123456 12345 gl_context.cc:357] GL version: 3.2")
    assert is_native_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert is_native_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    # Errors and everything else pass.
    assert not is_native_noise(b"E0000 00:00:1796385554.826072    5756 calculator_graph.cc:887] INTERNAL: boom")
    assert not is_native_noise(b"Traceback (most recent call last):")
    assert not is_native_noise(b"lagc-hand reconstruct: error: x.mp4: no such file or folder")
    assert not is_native_noise(b"W0000 is how a sentence might start")


def test_filter_drops_native_noise_and_passes_everything_else(tmp_path):
    """Bytes written to fd 2 directly (as native code does) are filtered; the rest arrives in order."""
    script = textwrap.dedent("""
        import os, sys
        from lagc_hand import quiet
        quiet.install()
        os.write(2, b"W0000 00:00:1796385554.826072    5756 some_file.cc:114] native noise\\n")
        os.write(2, b"E0000 00:00:1796385554.826072    5756 some_file.cc:9] a native error\\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nplain fd-2 line\\npartial")
        print("python stderr line", file=sys.stderr)
        subprocess_line = __import__("subprocess").run([sys.executable, "-c",
            "import os; os.write(2, b'child line\\\\n')"]).returncode
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=_env())
    assert p.returncode == 0, p.stderr
    err = p.stderr
    assert "native noise" not in err and "INFO: Created" not in err
    for keep in ("a native error", "plain fd-2 line", "python stderr line", "child line", "partial"):
        assert keep in err, err


def test_reconstruct_is_quiet_unless_verbose(tmp_path):
    """`lagc-hand reconstruct` on the sample: no W0000/I0000 lines on stderr; with --verbose, MediaPipe's."""
    runs = {}
    for verbose in (False, True):
        cmd = [sys.executable, "-m", "lagc_hand.cli"] + (["--verbose"] if verbose else []) + [
            "reconstruct", str(SAMPLE), "-o", str(tmp_path / f"m{int(verbose)}.npz"), "--frames", "0:6",
            "--detect-workers", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
        assert p.returncode == 0, p.stderr
        assert "6 frames" in p.stdout and len(p.stdout.strip().splitlines()) == 1  # one summary line
        runs[verbose] = p.stderr
    noise = lambda err: [ln for ln in err.encode().splitlines() if is_native_noise(ln)]  # noqa: E731
    assert not NATIVE.search(runs[False]) and not noise(runs[False]), runs[False]
    assert noise(runs[True]), "the engine printed no native log line at all: the quiet test proves nothing"
    # Errors still reach the user.
    p = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "reconstruct", str(tmp_path / "nope.mp4"),
                        "-o", str(tmp_path / "x.npz")], capture_output=True, text=True, timeout=120, env=_env())
    assert p.returncode != 0 and "no such file" in p.stderr


def test_server_job_log_is_quiet_unless_verbose(tmp_path):
    """A real `lagc-hand serve` running a job on the sample: the server log (its job worker's
    stderr included) has no native info/warning line; `lagc-hand --verbose serve` shows them."""
    from test_server_harness import ServerProcess, wait_for

    logs = {}
    for verbose in (False, True):
        # --verbose is global; the CLI takes it from anywhere on the command line.
        srv = ServerProcess(tmp_path / f"srv{int(verbose)}", "--allow-dir", str(SAMPLE.parent),
                            *(["--verbose"] if verbose else []))
        srv.start()
        try:
            with srv.client() as c:
                job = c.post("/api/v1/jobs/from-path",
                             json={"path": str(SAMPLE), "options": {"frame_start": 0, "frame_end": 6}}).json()
                job = wait_for(c, job["id"], ("done", "failed"), timeout=240)
                assert job["state"] == "done", job
        finally:
            assert srv.stop() == 0
        logs[verbose] = Path(srv.log_path).read_bytes().splitlines()
    quiet_noise = [ln for ln in logs[False] if is_native_noise(ln)]
    assert not quiet_noise, quiet_noise[:5]
    assert any(is_native_noise(ln) for ln in logs[True]), \
        "the verbose server printed no native line at all: the quiet check proves nothing"
