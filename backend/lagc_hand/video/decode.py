"""Video and image-folder decoding with OpenCV.

Frames come out as ``(H, W, 3) uint8`` **RGB** (OpenCV decodes BGR; every
engine wants RGB).  Timestamps are seconds from the start of the video: the
container's presentation time (``CAP_PROP_POS_MSEC``) where it is reliable
(finite and increasing), else ``index / fps``.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from lagc_hand.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: fps assumed for a folder of images (they carry no timing).
DEFAULT_IMAGE_FPS = 30.0
#: fps assumed when a container reports none (or nonsense).
FALLBACK_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a source before decoding it.

    path:        the file or folder.
    kind:        ``"video"`` or ``"images"``.
    width, height: pixels.
    fps:         frames per second (container value, or the fallback).
    frame_count: frames the container claims (exact for image folders; an
                 estimate for some video containers, e.g. webm may say 0).
    """

    path: Path
    kind: str
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class FrameRange:
    """Which source frames to keep: ``start`` (inclusive, 0-based), ``end``
    (exclusive, None = to the end), every ``stride``-th frame."""

    start: int = 0
    end: Optional[int] = None
    stride: int = 1

    def __post_init__(self) -> None:
        if self.start < 0:
            raise InputError(f"the first frame must be 0 or more, got {self.start}")
        if self.stride < 1:
            raise InputError(f"the stride must be 1 or more, got {self.stride}")
        if self.end is not None and self.end <= self.start:
            raise InputError(f"the frame range {self.start}:{self.end} is empty (end must be after start)")

    def expected_count(self, frame_count: int) -> int:
        """How many frames the range selects from a source of ``frame_count`` frames."""
        end = frame_count if self.end is None else min(self.end, frame_count)
        return max(0, math.ceil((end - self.start) / self.stride))

    @staticmethod
    def parse(text: str, stride: int = 1) -> "FrameRange":
        """``"A:B"``, ``"A:"``, ``":B"`` or ``"A"`` (one frame) -> FrameRange."""
        m = re.fullmatch(r"\s*(\d*)\s*(:?)\s*(\d*)\s*", text or "")
        if not m or (not m.group(1) and not m.group(3) and not m.group(2)):
            raise InputError(f"bad frame range {text!r}; expected A:B, A: or :B with frame numbers")
        start = int(m.group(1)) if m.group(1) else 0
        if not m.group(2):
            return FrameRange(start, start + 1, stride)
        end = int(m.group(3)) if m.group(3) else None
        return FrameRange(start, end, stride)


@dataclass
class Frame:
    """One decoded frame.  index: source frame number; time: seconds;
    image: (H, W, 3) uint8 RGB."""

    index: int
    time: float
    image: np.ndarray


def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


class VideoSource:
    """An opened video file or image folder.  Use :func:`open_video`."""

    def __init__(self, info: VideoInfo, images: Optional[list[Path]] = None) -> None:
        self.info = info
        self._images = images

    def frames(self, frame_range: FrameRange = FrameRange()) -> Iterator[Frame]:
        """Decode the frames of ``frame_range`` in order.

        Raises InputError when the range holds no decodable frame (starts past
        the end, or the data is corrupt from the first frame on).  Decoding
        that fails part-way through a file ends the sequence early; callers see
        fewer frames than ``info.frame_count`` (the container count can lie).
        """
        it = self._image_frames(frame_range) if self._images is not None else self._video_frames(frame_range)
        n = 0
        for frame in it:
            n += 1
            yield frame
        if n == 0:
            total = self.info.frame_count
            if total and frame_range.start >= total:
                raise InputError(
                    f"{self.info.path}: the frame range starts at {frame_range.start} but the video has "
                    f"{total} frames"
                )
            raise InputError(f"{self.info.path}: no frame could be decoded in the requested range "
                             f"(the file may be corrupt or hold no video frames)")

    # ------------------------------------------------------------------ images

    def _image_frames(self, fr: FrameRange) -> Iterator[Frame]:
        import cv2

        assert self._images is not None
        end = len(self._images) if fr.end is None else min(fr.end, len(self._images))
        for i in range(fr.start, end, fr.stride):
            path = self._images[i]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"{path}: cannot read this image (corrupt or unsupported format)")
            if bgr.shape[1] != self.info.width or bgr.shape[0] != self.info.height:
                raise InputError(
                    f"{path}: is {bgr.shape[1]}x{bgr.shape[0]} but the first image of the folder is "
                    f"{self.info.width}x{self.info.height}; all images must have the same size"
                )
            yield Frame(i, i / self.info.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    # ------------------------------------------------------------------ video

    def _video_frames(self, fr: FrameRange) -> Iterator[Frame]:
        import cv2

        cap = cv2.VideoCapture(str(self.info.path))
        if not cap.isOpened():
            raise InputError(f"{self.info.path}: cannot open the video")
        fps = self.info.fps
        last_time = -1.0
        try:
            index = 0
            # Skip to the start by grabbing (no colour conversion): seeking with
            # CAP_PROP_POS_FRAMES lands on key frames in some codecs and is not exact.
            while index < fr.start:
                if not cap.grab():
                    return
                index += 1
            while fr.end is None or index < fr.end:
                keep = (index - fr.start) % fr.stride == 0
                if not cap.grab():
                    return
                if keep:
                    ok, bgr = cap.retrieve()
                    if not ok or bgr is None:
                        return
                    t = self._timestamp(cap, index, fps, last_time)
                    last_time = t
                    if bgr.ndim == 2:
                        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                    yield Frame(index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            cap.release()

    @staticmethod
    def _timestamp(cap, index: int, fps: float, last_time: float) -> float:
        import cv2

        ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        nominal = index / fps
        # Trust the container's time only when it is finite, strictly increasing
        # and not wildly off the nominal clock (some backends report 0 or the
        # time of the *next* frame).
        if math.isfinite(ms) and ms >= 0:
            t = ms / 1000.0
            if t > last_time and (index == 0 or t > 0) and abs(t - nominal) < max(1.0, 0.5 * nominal):
                return t
        return nominal


def open_video(path: str | os.PathLike, image_fps: float = DEFAULT_IMAGE_FPS) -> VideoSource:
    """Open a video file or a folder of images; raise InputError with a clear
    message when it is missing, empty, unreadable or not a video."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        return _open_folder(p, image_fps)
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        # A single image is a one-frame folder.
        return _open_images(p, [p], image_fps)
    import cv2

    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            kind = "a video format OpenCV can read" if p.suffix.lower() in VIDEO_EXTENSIONS else "a video"
            raise InputError(f"{p}: cannot open this file as a video (it is corrupt or not {kind})")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, first = cap.read()
    finally:
        cap.release()
    if not ok or first is None:
        raise InputError(f"{p}: the video holds no decodable frame (zero-length or corrupt)")
    height, width = first.shape[:2]
    if not (math.isfinite(fps) and 0.5 <= fps <= 1000):
        fps = FALLBACK_FPS
    return VideoSource(VideoInfo(p, "video", int(width), int(height), fps, max(count, 0)))


def _open_folder(folder: Path, image_fps: float) -> VideoSource:
    images = sorted(
        (f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda f: _natural_key(f.name),
    )
    if not images:
        raise InputError(
            f"{folder}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
            "give a video file or a folder of frames"
        )
    return _open_images(folder, images, image_fps)


def _open_images(path: Path, images: list[Path], image_fps: float) -> VideoSource:
    import cv2

    first = cv2.imread(str(images[0]), cv2.IMREAD_COLOR)
    if first is None:
        raise InputError(f"{images[0]}: cannot read this image (corrupt or unsupported format)")
    if not (image_fps > 0):
        raise InputError(f"the frame rate for an image folder must be positive, got {image_fps}")
    h, w = first.shape[:2]
    return VideoSource(VideoInfo(path, "images", w, h, float(image_fps), len(images)), images)
