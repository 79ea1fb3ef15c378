"""Shared harness of the server tests (not a test module itself; no tests here).

The server runs as a real process (:class:`lagc_hand.server.launcher.ServerProcess`);
this adds test media and polling helpers.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import httpx
import numpy as np

from lagc_hand.server.launcher import ServerProcess, free_port  # noqa: F401  (re-exported)

REPO = Path(__file__).resolve().parents[1]


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
