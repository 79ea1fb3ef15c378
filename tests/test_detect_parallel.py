"""Chunk-parallel detection (engines/parallel.py) with real MediaPipe on the sample clip.

The contract: k chunks in threads give exactly what k sequential runs started at
the chunk boundaries give, in frame order; cancel stops every worker; a video
that holds fewer frames than its container claims loses nothing.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from lagc_hand.engines import create_engine
from lagc_hand.engines.parallel import CHUNKS_PER_WORKER, MIN_CHUNK_FRAMES, detect, plan_chunks
from lagc_hand.errors import Cancelled, InputError
from lagc_hand.video import FrameRange, VideoSource, open_video

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "samples" / "two_hands.mp4"


def test_plan_chunks_covers_the_range_exactly():
    # 100 frames from 10, stride 3 -> 30 kept frames; 3 threads, chunks of >= MIN_CHUNK_FRAMES.
    chunks, threads = plan_chunks(FrameRange(10, 100, 3), 1000, workers=3)
    assert threads == 3 and len(chunks) == 3
    assert [(c.start, c.end, c.stride) for c in chunks] == [(10, 40, 3), (40, 70, 3), (70, 100, 3)]
    kept = [i for c in chunks for i in range(c.start, c.end, c.stride)]
    assert kept == list(range(10, 100, 3))
    # Long ranges: CHUNKS_PER_WORKER chunks per thread, contiguous, covering everything once.
    chunks, threads = plan_chunks(FrameRange(0, 1000), 5000, workers=2)
    assert threads == 2 and len(chunks) == 2 * CHUNKS_PER_WORKER
    assert [i for c in chunks for i in range(c.start, c.end)] == list(range(1000))
    # An open range keeps its last chunk open (a container may under-report its length).
    assert plan_chunks(FrameRange(0, None, 1), 120, workers=2)[0][-1].end is None
    # Automatic: never a chunk under MIN_CHUNK_FRAMES; unknown length -> one chunk.
    assert plan_chunks(FrameRange(), MIN_CHUNK_FRAMES * 2 - 1, workers=0) == ([FrameRange()], 1)
    assert plan_chunks(FrameRange(), 0, workers=4) == ([FrameRange()], 1)
    # More workers than frames: one frame per chunk at most.
    assert plan_chunks(FrameRange(0, 3), 100, workers=8)[1] == 3
    with pytest.raises(InputError):
        plan_chunks(FrameRange(), 100, workers=-1)


def _sequential(source, fr):
    with create_engine("mediapipe-raw") as eng:
        return [(f.index, f.time, eng.process(f.image, f.time)) for f in source.frames(fr)]


def _same(obs, ref):
    assert [o.index for o in obs] == [r[0] for r in ref]
    assert [o.time for o in obs] == [r[1] for r in ref]
    for o, (_, _, hands) in zip(obs, ref):
        assert len(o.hands) == len(hands)
        for a, b in zip(o.hands, hands):
            np.testing.assert_array_equal(a.keypoints2d, b.keypoints2d)
            np.testing.assert_array_equal(a.keypoints3d, b.keypoints3d)


def test_parallel_equals_sequential_runs_per_chunk():
    src = open_video(SAMPLE)
    fr = FrameRange(0, 40)
    res = detect(src, fr, lambda: create_engine("mediapipe-raw"), workers=2)
    assert res.workers == 2 and res.chunks == 2 and len(res.observations) == 40 and res.engine_seconds > 0
    ref = _sequential(src, FrameRange(0, 20)) + _sequential(src, FrameRange(20, 40))
    _same(res.observations, ref)
    assert sum(len(o.hands) for o in res.observations) >= 60  # both hands in most frames


def test_container_over_reporting_its_length_loses_nothing():
    real = open_video(SAMPLE)
    n = real.info.frame_count
    liar = VideoSource(dataclasses.replace(real.info, frame_count=n * 3))
    res = detect(liar, FrameRange(n - 30, None), lambda: create_engine("mediapipe-raw"), workers=3)
    assert [o.index for o in res.observations] == list(range(n - 30, n))


def test_a_workers_error_reaches_the_caller(tmp_path):
    import cv2

    src = open_video(SAMPLE)
    for f in src.frames(FrameRange(0, 10)):
        cv2.imwrite(str(tmp_path / f"f{f.index:03d}.png"), cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    (tmp_path / "f007.png").write_bytes(b"not a png")  # in the second chunk
    with pytest.raises(InputError, match="f007.png"):
        detect(open_video(tmp_path), FrameRange(), lambda: create_engine("mediapipe-raw"), workers=2)


def test_cancel_stops_all_workers():
    src = open_video(SAMPLE)
    polls = []
    before = threading.active_count()
    with pytest.raises(Cancelled):
        detect(src, FrameRange(0, None), lambda: create_engine("mediapipe-raw"), workers=2,
               should_cancel=lambda: polls.append(1) or len(polls) >= 2)
    assert threading.active_count() == before  # no detect thread left behind


def test_more_chunks_than_threads_in_order():
    src = open_video(SAMPLE)
    res = detect(src, FrameRange(0, 96), lambda: create_engine("mediapipe-raw"), workers=0)
    assert res.chunks == 4 and [o.index for o in res.observations] == list(range(96))
    _same(res.observations[24:48], _sequential(src, FrameRange(24, 48)))


def test_progress_reaches_the_end():
    src = open_video(SAMPLE)
    seen = []
    res = detect(src, FrameRange(0, 30), lambda: create_engine("mediapipe-raw"), workers=2,
                 on_progress=lambda done, total, fps: seen.append((done, total)))
    assert seen[-1] == (30, 30) and len(res.observations) == 30
    assert all(d <= t for d, t in seen)
