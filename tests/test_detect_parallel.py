"""Chunk-parallel detection (engines/parallel.py) with real MediaPipe on the sample clip.

The contract: the chunk plan comes from the video alone; k chunks in threads give
exactly what k sequential runs started OVERLAP_FRAMES before the chunk boundaries
give, in frame order, whatever the number of threads (so the HandMotion is the
same on any machine); cancel stops every worker; a video that holds fewer frames
than its container claims loses nothing.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from lagc_hand.engines import create_engine
from lagc_hand.engines.parallel import (MAX_CHUNKS, MIN_CHUNK_FRAMES, OVERLAP_FRAMES, Chunk, detect, plan_chunks,
                                        plan_threads)
from lagc_hand.errors import Cancelled, InputError
from lagc_hand.video import FrameRange, VideoSource, open_video

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "samples" / "two_hands.mp4"


def _kept(chunks):
    """Frames each chunk keeps (its range without the overlap lead)."""
    return [i for c in chunks for i in range(c.frames.start, c.frames.end or 10 ** 9, c.frames.stride)[c.lead:]]


def test_plan_chunks_covers_the_range_exactly_from_the_video_alone():
    # 180 frames from 10, stride 3 -> 60 kept frames -> 2 chunks of 30, the second with an overlap lead.
    chunks = plan_chunks(FrameRange(10, 190, 3), 1000)
    assert chunks == [Chunk(FrameRange(10, 100, 3), 0), Chunk(FrameRange(100 - 3 * OVERLAP_FRAMES, 190, 3),
                                                               OVERLAP_FRAMES)]
    assert _kept(chunks) == list(range(10, 190, 3))
    # Long ranges: at most MAX_CHUNKS chunks, contiguous, covering everything once.
    chunks = plan_chunks(FrameRange(0, 10000), 50000)
    assert len(chunks) == MAX_CHUNKS and _kept(chunks) == list(range(10000))
    # An open range keeps its last chunk open (a container may under-report its length).
    assert plan_chunks(FrameRange(0, None, 1), 120)[-1].frames.end is None
    # Never a chunk under MIN_CHUNK_FRAMES; unknown length -> one chunk.
    assert plan_chunks(FrameRange(), MIN_CHUNK_FRAMES * 2 - 1) == [Chunk(FrameRange())]
    assert plan_chunks(FrameRange(), 0) == [Chunk(FrameRange())]
    # Threads: what was asked (0 = cores), never more than chunks; the plan does not take them.
    assert plan_threads(3, 8) == 3 and plan_threads(5, 2) == 2 and plan_threads(1, 0) == 1
    with pytest.raises(InputError):
        plan_threads(4, -1)


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
    fr = FrameRange(0, 48)
    res = detect(src, fr, lambda: create_engine("mediapipe-raw"), workers=2)
    assert res.workers == 2 and res.chunks == 2 and len(res.observations) == 48 and res.engine_seconds > 0
    ref = _sequential(src, FrameRange(0, 24)) + _sequential(src, FrameRange(24 - OVERLAP_FRAMES, 48))[OVERLAP_FRAMES:]
    _same(res.observations, ref)
    assert sum(len(o.hands) for o in res.observations) >= 72  # both hands in most frames


def test_same_handmotion_for_1_2_and_4_detect_workers():
    """One video, any machine: the HandMotion arrays are equal for 1, 2 and 4 workers."""
    from lagc_hand.api import ReconstructOptions, reconstruct
    from lagc_hand_blender.core.handmotion import to_arrays

    runs = {}
    for w in (1, 2, 4):
        res = reconstruct(SAMPLE, ReconstructOptions(frame_end=96, detect_workers=w, device="cpu"))
        assert res.summary["detect_chunks"] == 4 and res.summary["detect_workers"] == w
        runs[w] = to_arrays(res.motion)
    assert runs[1]["left_present"].mean() > 0.8 and runs[1]["right_present"].mean() > 0.8
    for w in (2, 4):
        assert runs[w].keys() == runs[1].keys()
        for name, arr in runs[1].items():
            if name != "header":  # the header's summary holds timings and the worker count
                np.testing.assert_array_equal(runs[w][name], arr, err_msg=f"{name}, {w} workers")


def test_container_over_reporting_its_length_loses_nothing():
    real = open_video(SAMPLE)
    n = real.info.frame_count
    liar = VideoSource(dataclasses.replace(real.info, frame_count=n * 3))
    res = detect(liar, FrameRange(n - 30, None), lambda: create_engine("mediapipe-raw"), workers=3)
    assert res.chunks > 1 and [o.index for o in res.observations] == list(range(n - 30, n))


def test_a_workers_error_reaches_the_caller(tmp_path):
    import cv2

    src = open_video(SAMPLE)
    for f in src.frames(FrameRange(0, 2 * MIN_CHUNK_FRAMES)):
        cv2.imwrite(str(tmp_path / f"f{f.index:03d}.png"), cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    (tmp_path / "f037.png").write_bytes(b"not a png")  # in the second chunk
    with pytest.raises(InputError, match="f037.png"):
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
    res = detect(src, FrameRange(0, 96), lambda: create_engine("mediapipe-raw"), workers=2)
    assert res.chunks == 4 and res.workers == 2 and [o.index for o in res.observations] == list(range(96))
    _same(res.observations[24:48], _sequential(src, FrameRange(24 - OVERLAP_FRAMES, 48))[OVERLAP_FRAMES:])


def test_progress_reaches_the_end():
    src = open_video(SAMPLE)
    seen = []
    res = detect(src, FrameRange(0, 60), lambda: create_engine("mediapipe-raw"), workers=2,
                 on_progress=lambda done, total, fps: seen.append((done, total)))
    assert res.chunks == 2 and seen[-1] == (60, 60) and len(res.observations) == 60
    assert all(d <= t for d, t in seen)
