"""Run an engine over a video: frames -> :class:`FrameObservations`, in order.

The detect stage is the slow one (MediaPipe needs ~25-30 ms of one core per
two-hand frame) and MediaPipe's graph is single-threaded, so the video is cut
into contiguous chunks that threads detect at once, each chunk with its own
engine and its own decoder.  MediaPipe releases the GIL while it computes, so
threads are enough (measured on the 2-core dev VM: 26 -> 48 fps for two threads
on the sample clip); so does LiteRT's ``invoke``, which the default engine runs
(:mod:`.hands_tracker`; a pure-Python thread kept running through 169 palm-detector
invokes in 2 s with 5 pauses longer than 0.6 invoke), each with one interpreter thread.

**The chunk plan comes from the video alone** (the frames selected: range and
container frame count), never from the number of threads or CPU cores, so one
video gives the same observations -- and the same HandMotion -- on any machine
and with any ``workers``: threads only decide how many chunks run at once.
Chunks are at least :data:`MIN_CHUNK_FRAMES` long and there are at most
:data:`MAX_CHUNKS`, which leaves several chunks per thread for load balance
(the cost per frame is uneven: the recovery engine searches again and again
while a hand is hidden, and with one chunk per thread the thread that holds the
hidden stretch finishes last; sample clip, 2 threads: 2 chunks 26.9 fps,
5 chunks 33.7 fps).

Why contiguous chunks and not interleaved frames: the engines track between
consecutive frames (MediaPipe's landmark tracker, the recovery engine's
predictions).  Seams are stitched in two ways: every chunk after the first
starts :data:`OVERLAP_FRAMES` frames early and drops what it saw there (its
engine has found and started tracking the hands by the chunk's first frame, as
a single run would have), and the tracker runs afterwards over all frames at
once, so tracks are associated across seams like anywhere else.  The
observations of chunk ``k`` are therefore identical to a single-threaded run
started ``OVERLAP_FRAMES`` before the chunk, and do not depend on thread timing.

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
#: detection, the overlap).
MIN_CHUNK_FRAMES = 24
#: At most this many chunks: :data:`MAX_AUTO_WORKERS` threads x 4 chunks each for
#: load balance (see the module docstring).
MAX_CHUNKS = 32
#: Frames each chunk after the first detects before its own first frame, and drops:
#: the engine's tracking state at the seam then is that of a run through it.
OVERLAP_FRAMES = 4
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


@dataclass(frozen=True)
class Chunk:
    """One contiguous piece of the frame range.

    frames: what the chunk's engine decodes and detects, overlap included.
    lead:   how many of its first frames are overlap (detected, then dropped).
    """

    frames: FrameRange
    lead: int = 0


def plan_chunks(frame_range: FrameRange, frame_count: int) -> list[Chunk]:
    """Cut ``frame_range`` into contiguous chunks; from the video alone.

    frame_count: the container's frame count (0 when unknown: then one chunk).
    ``max(1, min(MAX_CHUNKS, expected // MIN_CHUNK_FRAMES))`` chunks of equal
    length (the last may be shorter); every chunk after the first starts
    :data:`OVERLAP_FRAMES` kept frames early (never before the range).  The last
    chunk is open-ended when the range is, so a container that under-reports its
    length loses nothing.
    """
    expected = frame_range.expected_count(frame_count) if frame_count > 0 else 0
    n = max(1, min(MAX_CHUNKS, expected // MIN_CHUNK_FRAMES))
    if n == 1:
        return [Chunk(frame_range)]
    per = math.ceil(expected / n)
    n = math.ceil(expected / per)  # rounding up the chunk length may leave fewer chunks
    step = per * frame_range.stride
    chunks = []
    for k in range(n):
        start = frame_range.start + k * step
        end = frame_range.end if k == n - 1 else start + step
        lead = min(OVERLAP_FRAMES, k * per)
        chunks.append(Chunk(FrameRange(start - lead * frame_range.stride, end, frame_range.stride), lead))
    return chunks


def plan_threads(chunks: int, workers: int = 0) -> int:
    """Threads for ``chunks`` chunks: ``workers`` (0 = one per core, at most
    :data:`MAX_AUTO_WORKERS`), never more than there are chunks."""
    if workers < 0:
        raise InputError(f"detect workers must be 0 (automatic) or more, got {workers}")
    threads = workers or min(available_cores(), MAX_AUTO_WORKERS)
    return max(1, min(threads, chunks))


class _ChunkDetector:
    """Detects chunks of one video: chunk ``k``'s observations go into ``results[k]``
    (kept frames, in order) and its time inside ``engine.process`` into
    ``engine_time[k]`` (seconds); ``stop`` makes every chunk return early."""

    def __init__(self, source: VideoSource, chunks: list[Chunk], make_engine: Callable[[], Any]):
        self.source = source
        self.chunks = chunks
        self.make_engine = make_engine
        self.stop = threading.Event()
        self.results: list[list[FrameObservations]] = [[] for _ in chunks]
        self.engine_time = [0.0] * len(chunks)

    def done(self) -> int:
        """Frames kept so far, all chunks together."""
        return sum(len(r) for r in self.results)

    def run(self, k: int, before_frame: Optional[Callable[[], None]] = None) -> None:
        """Detect chunk ``k`` into ``results[k]``; ``before_frame`` runs before each frame."""
        if self.stop.is_set():
            return  # queued behind a failed or cancelled run
        results, engine_time, stop = self.results, self.engine_time, self.stop
        engine = self.make_engine()
        try:
            frames = self.source.frames(self.chunks[k].frames)
            lead = self.chunks[k].lead
            try:
                for n, frame in enumerate(frames):
                    if stop.is_set():
                        return
                    if before_frame is not None:
                        before_frame()
                    t0 = time.perf_counter()
                    hands = engine.process(frame.image, frame.time)
                    engine_time[k] += time.perf_counter() - t0
                    if n >= lead:  # overlap frames only warm the engine up
                        results[k].append(FrameObservations(frame.index, frame.time, hands))
            except InputError:
                if k > 0 and not results[k]:
                    return  # the video ended before this chunk (frame count over-reported)
                raise
        finally:
            engine.close()


def _run_sequential(det: _ChunkDetector, expected: int, report: Callable[[int, int, float], None],
                    cancelled: Callable[[], bool], t_start: float) -> None:
    """Every chunk in this thread, one after the other, with cancel and progress checks
    before each frame (progress at the first frame, then every :data:`POLL_S` seconds)."""
    last = [0.0]

    def before_frame() -> None:
        if cancelled():
            raise Cancelled("reconstruction cancelled by the user")
        n, now = det.done(), time.perf_counter()
        if n == 1 or (n and now - last[0] >= POLL_S):
            last[0] = now
            report(n, max(expected, n), n / max(now - t_start, 1e-9))

    for k in range(len(det.chunks)):
        det.run(k, before_frame)


def detect(
    source: VideoSource,
    frame_range: FrameRange,
    make_engine: Callable[[], Any],
    workers: int = 0,
    on_progress: Optional[Callable[[int, int, float], None]] = None,
    should_cancel: Optional[Callable[[], bool]] = None,
    chunked: bool = True,
) -> DetectResult:
    """Decode ``frame_range`` of ``source`` and run one engine per chunk.

    make_engine: creates a fresh engine (called once per chunk, in its thread).
    workers: threads (0 = one per core); the result does not depend on it.
    chunked: False = one chunk, one engine (for engines that batch over all
    cores themselves and are costly to create, e.g. the network engine).
    on_progress: ``(frames_done, frames_expected, fps)``, called from this thread
    about every :data:`POLL_S` seconds and once at the end.
    should_cancel: polled from this thread; when it returns True the workers stop
    and :class:`Cancelled` is raised.

    Raises the first worker's error (e.g. :class:`InputError` for an undecodable
    range) after stopping the other workers.  Empty trailing chunks (the
    container claimed more frames than it holds) are not errors.
    """
    chunks = plan_chunks(frame_range, source.info.frame_count) if chunked else [Chunk(frame_range)]
    threads = plan_threads(len(chunks), workers)
    expected = frame_range.expected_count(source.info.frame_count) if source.info.frame_count else 0
    det = _ChunkDetector(source, chunks, make_engine)

    report = on_progress or (lambda done, total, fps: None)
    cancelled = should_cancel or (lambda: False)
    t_start = time.perf_counter()
    if threads == 1:
        # Same thread, chunk after chunk: no pool for the common short-clip case
        # (and one worker), and cancel/progress per frame.
        _run_sequential(det, expected, report, cancelled, t_start)
    else:
        def poll() -> None:
            n = det.done()
            report(n, max(expected, n), n / max(time.perf_counter() - t_start, 1e-9))
            if cancelled():
                raise Cancelled("reconstruction cancelled by the user")

        _run_pool(det.run, len(chunks), threads, det.stop, poll)
    observations = [o for r in det.results for o in r]
    wall = time.perf_counter() - t_start
    report(len(observations), len(observations), len(observations) / max(wall, 1e-9))
    return DetectResult(observations, float(sum(det.engine_time)), wall, threads, len(chunks))


def _run_pool(run_chunk: Callable[[int], None], n_chunks: int, threads: int, stop: threading.Event,
              poll: Callable[[], None]) -> None:
    """Run ``run_chunk(k)`` for every chunk on ``threads`` threads, in chunk order as
    threads free up; ``poll()`` runs in this thread every :data:`POLL_S` seconds (it
    reports progress and may raise :class:`Cancelled`).  The first worker error is
    raised here; either way ``stop`` is set and every worker has finished on return."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lagc-detect") as pool:
        futures = [pool.submit(run_chunk, k) for k in range(n_chunks)]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION)
                for f in done:
                    if f.exception() is not None:
                        raise f.exception()
                poll()
        finally:
            stop.set()  # other workers finish their current frame and close their engines
            pool.shutdown(wait=True, cancel_futures=True)
