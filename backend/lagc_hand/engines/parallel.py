"""Run an engine over a video: frames -> :class:`FrameObservations`, in order.

The detect stage is the slow one (MediaPipe needs ~25-30 ms of one core per
two-hand frame) and MediaPipe's graph is single-threaded, so on a machine with
``n`` cores the video is cut into contiguous chunks that ``n`` threads detect at
once, each chunk with its own engine and its own decoder.  MediaPipe releases
the GIL while it computes, so threads are enough (measured on the 2-core dev
VM: 26 -> 48 fps for two threads on the sample clip).  There are up to
:data:`CHUNKS_PER_WORKER` chunks per thread, taken in order as threads free up,
because the cost per frame is uneven: the recovery engine searches again and
again while a hand is hidden, and with one chunk per thread the thread that
holds the hidden stretch finishes last (sample clip, 2 threads: 2 chunks
26.9 fps, 5 chunks 33.7 fps).

Why contiguous chunks and not interleaved frames: the engines track between
consecutive frames (MediaPipe's landmark tracker, the recovery engine's
predictions); a chunk costs one fresh palm detection at its start, which is
what any frame after a lost hand costs anyway.  The observations of chunk ``k``
are therefore identical to a single-threaded run started at the chunk's first
frame, and the result depends on the number of chunks, not on thread timing.

Threads only decode and detect.  Progress reports and the cancel check run in
the calling thread (front ends' callbacks need not be thread-safe).
"""
from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Optional

from lagc_hand.engines.base import FrameObservations
from lagc_hand.errors import Cancelled, InputError
from lagc_hand.video import FrameRange, VideoSource

#: A chunk shorter than this is not worth a fresh engine (start-up, one palm
#: detection, and tracking restarts at the boundary).
MIN_CHUNK_FRAMES = 24
#: Chunks per thread, for load balance (see the module docstring).
CHUNKS_PER_WORKER = 4
#: More workers than this rarely help: decoding and Python glue start to dominate.
MAX_AUTO_WORKERS = 8
#: How often the calling thread wakes to report progress and check for cancel (s).
POLL_S = 0.1


@dataclass
class DetectResult:
    """observations: one per decoded frame, in frame order.
    engine_seconds: time spent inside ``engine.process``, summed over workers.
    wall_seconds:   wall time of the whole detect stage (decode + engines).
    workers:        threads that ran (1 = sequential).
    chunks:         contiguous chunks the range was cut into."""

    observations: list[FrameObservations]
    engine_seconds: float
    wall_seconds: float
    workers: int
    chunks: int = 1


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_chunks(frame_range: FrameRange, frame_count: int, workers: int = 0) -> tuple[list[FrameRange], int]:
    """Cut ``frame_range`` into contiguous chunks; return ``(chunks, threads)``.

    frame_count: the container's frame count (0 when unknown: then one chunk).
    workers: threads; 0 = automatic (one per core, at most :data:`MAX_AUTO_WORKERS`).
    There are at most ``threads * CHUNKS_PER_WORKER`` chunks and none under
    :data:`MIN_CHUNK_FRAMES` frames, except that an explicit ``workers`` always
    gets that many chunks (when there are frames enough).  The last chunk is
    open-ended when the range is, so a container that under-reports its length
    loses nothing.
    """
    if workers < 0:
        raise InputError(f"detect workers must be 0 (automatic) or more, got {workers}")
    expected = frame_range.expected_count(frame_count) if frame_count > 0 else 0
    threads = workers or min(available_cores(), MAX_AUTO_WORKERS)
    n = min(threads * CHUNKS_PER_WORKER, expected // MIN_CHUNK_FRAMES)
    if workers:
        n = max(n, workers)
    n = max(1, min(n, expected)) if expected else 1
    if n == 1:
        return [frame_range], 1
    per = math.ceil(expected / n)
    n = math.ceil(expected / per)  # rounding up the chunk length may leave fewer chunks
    step = per * frame_range.stride
    chunks = []
    for k in range(n):
        start = frame_range.start + k * step
        end = frame_range.end if k == n - 1 else start + step
        chunks.append(FrameRange(start, end, frame_range.stride))
    return chunks, min(threads, n)


def detect(
    source: VideoSource,
    frame_range: FrameRange,
    make_engine: Callable[[], Any],
    workers: int = 0,
    on_progress: Optional[Callable[[int, int, float], None]] = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> DetectResult:
    """Decode ``frame_range`` of ``source`` and run one engine per chunk.

    make_engine: creates a fresh engine (called once per chunk, in its thread).
    on_progress: ``(frames_done, frames_expected, fps)``, called from this thread
    about every :data:`POLL_S` seconds and once at the end.
    should_cancel: polled from this thread; when it returns True the workers stop
    and :class:`Cancelled` is raised.

    Raises the first worker's error (e.g. :class:`InputError` for an undecodable
    range) after stopping the other workers.  Empty trailing chunks (the
    container claimed more frames than it holds) are not errors.
    """
    chunks, threads = plan_chunks(frame_range, source.info.frame_count, workers)
    expected = frame_range.expected_count(source.info.frame_count) if source.info.frame_count else 0
    stop = threading.Event()
    results: list[list[FrameObservations]] = [[] for _ in chunks]
    engine_time = [0.0] * len(chunks)

    def run_chunk(k: int, before_frame: Optional[Callable[[], None]] = None) -> None:
        """Detect chunk ``k`` into ``results[k]``; ``before_frame`` runs before each frame."""
        if stop.is_set():
            return  # queued behind a failed or cancelled run
        engine = make_engine()
        try:
            frames = source.frames(chunks[k])
            try:
                for frame in frames:
                    if stop.is_set():
                        return
                    if before_frame is not None:
                        before_frame()
                    t0 = time.perf_counter()
                    hands = engine.process(frame.image, frame.time)
                    engine_time[k] += time.perf_counter() - t0
                    results[k].append(FrameObservations(frame.index, frame.time, hands))
            except InputError:
                if k > 0 and not results[k]:
                    return  # the video ended before this chunk (frame count over-reported)
                raise
        finally:
            engine.close()

    report = on_progress or (lambda done, total, fps: None)
    cancelled = should_cancel or (lambda: False)
    t_start = time.perf_counter()
    if len(chunks) == 1:
        # Same thread: no pool for the common short-clip case, and cancel/progress per frame.
        last = [0.0]

        def before_frame() -> None:
            if cancelled():
                raise Cancelled("reconstruction cancelled by the user")
            n, now = len(results[0]), time.perf_counter()
            if n == 1 or (n and now - last[0] >= POLL_S):
                last[0] = now
                report(n, max(expected, n), n / max(now - t_start, 1e-9))

        run_chunk(0, before_frame)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lagc-detect") as pool:
            futures = [pool.submit(run_chunk, k) for k in range(len(chunks))]
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION)
                    for f in done:
                        if f.exception() is not None:
                            raise f.exception()
                    n = sum(len(r) for r in results)
                    report(n, max(expected, n), n / max(time.perf_counter() - t_start, 1e-9))
                    if cancelled():
                        raise Cancelled("reconstruction cancelled by the user")
            finally:
                stop.set()  # other workers finish their current frame and close their engines
                pool.shutdown(wait=True, cancel_futures=True)
    observations = [o for r in results for o in r]
    wall = time.perf_counter() - t_start
    report(len(observations), len(observations), len(observations) / max(wall, 1e-9))
    return DetectResult(observations, float(sum(engine_time)), wall, threads, len(chunks))

