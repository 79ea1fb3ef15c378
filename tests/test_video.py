"""Decode: real video files written with cv2.VideoWriter, image folders, bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lagc_hand.errors import InputError
from lagc_hand.video import FrameRange, open_video

W, H, N, FPS = 64, 48, 12, 25.0


def _frame(i: int) -> np.ndarray:
    """BGR frame whose mean brightness encodes its index (survives lossy codecs)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :, 2] = 10 + 18 * (i % 13)  # red channel in BGR
    return img


def _index_of(rgb: np.ndarray) -> int:
    return int(round((rgb[:, :, 0].mean() - 10) / 18))


def write_video(path, fourcc: str, n: int = N) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
    assert w.isOpened()
    for i in range(n):
        w.write(_frame(i))
    w.release()


@pytest.mark.parametrize("ext,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG"), (".mov", "mp4v"), (".webm", "VP80")])
def test_decode_formats_all_frames_in_order(tmp_path, ext, fourcc):
    path = tmp_path / f"clip{ext}"
    write_video(path, fourcc)
    src = open_video(path)
    assert (src.info.width, src.info.height) == (W, H)
    assert src.info.fps == pytest.approx(FPS)
    frames = list(src.frames())
    assert [f.index for f in frames] == list(range(N))
    assert [_index_of(f.image) for f in frames] == list(range(N))
    # RGB, not BGR: the encoded channel is red.
    assert frames[3].image[:, :, 0].mean() > frames[3].image[:, :, 2].mean() + 20
    times = np.array([f.time for f in frames])
    np.testing.assert_allclose(times, np.arange(N) / FPS, atol=1.5 / FPS)
    assert np.all(np.diff(times) > 0)


def test_range_and_stride(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, "MJPG")
    frames = list(open_video(path).frames(FrameRange(2, 11, 3)))
    assert [f.index for f in frames] == [2, 5, 8]
    assert [_index_of(f.image) for f in frames] == [2, 5, 8]
    assert frames[1].time == pytest.approx(5 / FPS, abs=1e-3)
    assert FrameRange(2, 11, 3).expected_count(N) == 3


def test_frame_range_parse_and_errors():
    assert FrameRange.parse("3:9") == FrameRange(3, 9, 1)
    assert FrameRange.parse("3:", 2) == FrameRange(3, None, 2)
    assert FrameRange.parse(":5") == FrameRange(0, 5, 1)
    assert FrameRange.parse("4") == FrameRange(4, 5, 1)
    for bad in ("a:b", "", "5:2", "1:2:3"):
        with pytest.raises(InputError):
            FrameRange.parse(bad)
    with pytest.raises(InputError, match="stride"):
        FrameRange(0, None, 0)


def test_range_past_end(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, "MJPG")
    with pytest.raises(InputError, match="starts at 50"):
        list(open_video(path).frames(FrameRange(50, None, 1)))


def test_image_folder(tmp_path):
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        cv2.imwrite(str(tmp_path / f"f{i}.png"), _frame(i))
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_video(tmp_path, image_fps=10)
    assert src.info.kind == "images" and src.info.frame_count == 3
    frames = list(src.frames())
    assert [_index_of(f.image) for f in frames] == [1, 2, 10]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2])


def test_image_folder_mixed_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), _frame(1))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="same size"):
        list(open_video(tmp_path).frames())


def test_missing_empty_and_non_video(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_video(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_video(empty)
    text = tmp_path / "readme.mp4"
    text.write_text("hello, I am not a video\n" * 50)
    with pytest.raises(InputError):
        list(open_video(text).frames())
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(InputError, match="no images"):
        open_video(tmp_path / "emptydir")


def test_zero_length_video(tmp_path):
    path = tmp_path / "zero.avi"
    write_video(path, "MJPG", n=0)
    with pytest.raises(InputError):
        list(open_video(path).frames())


def test_corrupt_video(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, "mp4v", n=12)
    data = bytearray(good.read_bytes())
    # Truncated: the mp4 index (moov) is written last, so the rest is unreadable.
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(InputError):
        list(open_video(trunc).frames())
    # Random bytes under a video name.
    rng = np.random.default_rng(0)
    garbled = tmp_path / "garbled.mp4"
    garbled.write_bytes(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())
    with pytest.raises(InputError):
        list(open_video(garbled).frames())
