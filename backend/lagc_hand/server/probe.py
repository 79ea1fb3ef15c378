"""Look at a submitted video before queueing it, so a bad file is refused at
once with a clear 4xx instead of failing minutes later in the worker."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# (offset, magic) of containers OpenCV/FFmpeg commonly read.
_SIGNATURES = (
    (4, b"ftyp"),  # mp4 / mov / m4v / 3gp
    (4, b"moov"),  # old QuickTime
    (4, b"mdat"),
    (4, b"wide"),
    (4, b"free"),
    (4, b"skip"),
    (0, b"RIFF"),  # avi (RIFF....AVI )
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm
    (0, b"OggS"),
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x00\x00\x01\xb3"),  # MPEG-1/2 video elementary stream
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF / wmv
    (0, b"YUV4MPEG2"),  # y4m
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"\x00\x00\x00\x01"),  # H.264 / H.265 Annex-B elementary stream
)

SUPPORTED_TEXT = "mp4, mov, m4v, avi, mkv, webm, ogv, flv, mpg, ts, wmv"


class ProbeError(Exception):
    """``status`` 415 (not a video at all) or 422 (a video we cannot use); the
    message is for the user."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class VideoInfo:
    """width / height: pixels; frame_count: frames in the file (counted when the
    container does not say); fps: frames per second (0 when unknown)."""

    width: int
    height: int
    frame_count: int
    fps: float


def looks_like_video(head: bytes) -> bool:
    """True when the first bytes of a file (pass at least 512) carry a known video
    container signature.

    Why required: FFmpeg opens almost anything (its ``tty`` demuxer renders a
    text file as video frames), so "OpenCV can open it" alone would accept
    notes, logs or HTML as videos.
    """
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return True  # MPEG transport stream: sync byte every 188 bytes
    return any(head[off : off + len(magic)] == magic for off, magic in _SIGNATURES)


def frames_to_process(frame_count: int, frame_start: int, frame_end: Optional[int], stride: int) -> int:
    """How many frames a job with this range and stride will run the engine on."""
    end = frame_count if frame_end is None else min(frame_end, frame_count)
    if end <= frame_start:
        return 0
    return (end - frame_start + stride - 1) // stride


def probe_video(path: Path, count_limit: int, name: Optional[str] = None) -> VideoInfo:
    """Open ``path`` with OpenCV, decode its first frame, read size / length / fps.

    ``count_limit``: when the container does not state its frame count, frames
    are counted by grabbing, stopping after ``count_limit + 1`` (enough to know
    the video is too long).  ``name``: how messages call the file (default: its name).
    Raises :class:`ProbeError`.
    """
    import cv2

    path = Path(path)
    name = name or path.name
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise ProbeError(422, "invalid_video", f"{name}: cannot be read ({exc.strerror})") from None
    if not head:
        raise ProbeError(422, "invalid_video", f"{name}: the file is empty")
    if not looks_like_video(head):
        raise ProbeError(415, "unsupported_media", f"{name}: not a video file this server can read (supported: {SUPPORTED_TEXT})")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise ProbeError(
                422, "invalid_video",
                f"{name}: looks like a video but cannot be opened; it is damaged or uses a codec this "
                "build cannot decode (re-encode it as H.264 mp4)",
            )
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ProbeError(
                422, "invalid_video",
                f"{name}: no frame could be decoded; the file is damaged, empty or uses an unsupported codec",
            )
        height, width = frame.shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (fps > 0 and fps < 10000):
            fps = 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:
            count = 1
            while count <= count_limit and cap.grab():
                count += 1
        return VideoInfo(width=int(width), height=int(height), frame_count=count, fps=fps)
    finally:
        cap.release()
