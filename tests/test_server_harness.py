"""Shared harness of the server tests: start the REAL ``lagc-hand serve`` process.

Not a test module itself (no tests here); ``tests/test_server*.py`` import it.
Each server gets a free port on 127.0.0.1, its own state folder and its own
token file (``LAGC_HAND_TOKEN_FILE``), so tests never touch the user's config.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m lagc_hand.cli serve`` in a subprocess; ``start``/``stop``/``kill9``."""

    def __init__(self, root: Path, *extra_args: str, port: Optional[int] = None):
        self.root = Path(root)
        self.state_dir = self.root / "state"
        self.token_file = self.root / "config" / "token"
        self.log_path = self.root / "server.log"
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def start(self, timeout: float = 90.0) -> "ServerProcess":
        env = dict(os.environ)
        env.update(LAGC_HAND_TOKEN_FILE=str(self.token_file), LAGC_HAND_STATE_DIR=str(self.state_dir),
                   LAGC_HAND_CONFIG_DIR=str(self.root / "config"), PYTHONUNBUFFERED="1",
                   NO_PROXY="*", no_proxy="*")
        self.root.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "lagc_hand.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--state-dir", str(self.state_dir), *self.extra_args],
            cwd=str(REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop (SIGINT, like Ctrl-C); returns the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        rc, self.proc = self.proc.returncode, None
        return rc

    def kill9(self) -> None:
        """Simulate a crash: SIGKILL, no clean-up code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        self.proc = None

    def client(self, token: Optional[str] = "auto", **kw) -> httpx.Client:
        headers = dict(kw.pop("headers", {}))
        if token == "auto":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 60.0), trust_env=False, **kw)


def write_video(path: Path, frames: int, size: tuple[int, int] = (160, 120), fps: float = 30.0, seed: int = 0) -> Path:
    """A short noise video (``size`` = (width, height)); no hands in it, which is a
    valid input whose result is 'no hands found'."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for i in range(frames):
        # A moving bright square on noise: decodable, cheap, varied frames.
        img = base.copy()
        x = (i * 3) % max(1, w - 20)
        img[h // 3 : h // 3 + 20, x : x + 20] = 255
        writer.write(img)
    writer.release()
    return path


def wait_for(client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = 120.0,
             seen: Optional[list] = None) -> dict:
    """Poll a job until its state is in ``states``; record every status in ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if seen is not None:
            seen.append(job)
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s: {job}")
        time.sleep(0.05)
