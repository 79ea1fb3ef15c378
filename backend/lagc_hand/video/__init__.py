"""Decode: video files or folders of images -> RGB frames with true timestamps.

Public API: :func:`open_video` -> :class:`VideoSource` (``info`` + ``frames()``).
Every failure the user can cause (missing, empty, corrupt, non-video input,
an empty frame range) raises :class:`lagc_hand.errors.InputError`.
"""
from lagc_hand.video.decode import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Frame,
    FrameRange,
    VideoInfo,
    VideoSource,
    open_video,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Frame",
    "FrameRange",
    "VideoInfo",
    "VideoSource",
    "open_video",
]
