"""Shared bits of the benchmarks: paths, machine description, RESULTS.md writer."""
from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "two_hands.mp4"
SAMPLE_GT = ROOT / "assets" / "samples" / "two_hands_gt.npz"
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU threads, Python {platform.python_version()}, {platform.system()}"


def append_results(title: str, body: str) -> None:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = f"\n## {title} — {stamp}\n\nMachine: {machine()}\n\n{body.rstrip()}\n"
    if not RESULTS.exists():
        text = "# Benchmark results\n\nAppended by `python -m bench` (newest last).\n" + text
    with open(RESULTS, "a") as f:
        f.write(text)


def rgb_frames(path, limit: int | None = None) -> tuple[list, float]:
    """Every frame of a video (or up to ``limit``) as (H, W, 3) uint8 RGB arrays, and its fps,
    through the product's own decoder (:func:`lagc_hand.video.open_video`)."""
    from lagc_hand.video import FrameRange, open_video

    src = open_video(path)
    frames = []
    for fr in src.frames(FrameRange(0, limit)):
        frames.append(fr.image)
    return frames, float(src.info.fps)


def run_clips_cli(doc: str, main: Callable[..., int], argv: Optional[list[str]] = None) -> int:
    """The command line of the benchmarks over the rendered interacting clips
    (``bench/interaction.py``, ``bench/refiner.py``): ``--clips NAME ...`` (default
    all) and ``--no-write``; runs ``main(clips, write=...)`` and returns its status."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="*", help="clip names (pray, clasp, ...); default all")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    a = ap.parse_args(argv)
    return main(a.clips, write=not a.no_write)
