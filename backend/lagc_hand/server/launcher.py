"""Start and stop a real ``lagc-hand serve`` process (for tests and benchmarks).

Each :class:`ServerProcess` gets a free port on 127.0.0.1, its own state
folder and its own token file (``LAGC_HAND_TOKEN_FILE``), so it never touches
the user's configuration.
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
            cwd=str(self.root), env=env, stdout=self._log, stderr=subprocess.STDOUT,
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
