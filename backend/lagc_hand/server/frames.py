"""Synchronous inference on a few still images (``POST /api/v1/infer/frames``),
for live use: the engine runs directly, no job, no fitting."""
from __future__ import annotations

import importlib
import logging
from typing import Optional

import numpy as np

from lagc_hand.errors import EngineUnavailable, LagcHandError
from lagc_hand.server.models import FrameResult, FramesOptions, FramesResponse, Observation

log = logging.getLogger("lagc_hand.server")

_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"))


class ImageError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def available_engines() -> list[str]:
    """Engines this installation can run (from ``lagc_hand.engines`` when it says)."""
    try:
        engines = importlib.import_module("lagc_hand.engines")
        fn = getattr(engines, "available_engines", None)
        if fn is not None:
            return [str(e) for e in fn()]
    except Exception:  # a broken optional engine must not break /health
        log.exception("could not list engines")
    return ["mediapipe"]


def decode_image(data: bytes, name: str, max_width: int, max_height: int) -> np.ndarray:
    """JPEG/PNG bytes -> (H, W, 3) uint8 RGB.  415 for other formats, 422 for
    damaged images, 413 above the resolution limit."""
    import cv2

    if not any(data.startswith(m) for m, _ in _MAGIC):
        raise ImageError(415, "unsupported_media", f"{name}: not a JPEG or PNG image")
    # Check the size the header claims before decoding pixels, so a tiny file
    # that claims a gigantic image is refused without allocating it.
    size = header_size(data)
    if size is not None and (size[0] > max_width or size[1] > max_height):
        raise ImageError(413, "too_large", f"{name}: {size[0]}x{size[1]} is larger than the limit {max_width}x{max_height}")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageError(422, "invalid_image", f"{name}: the image is damaged and cannot be decoded")
    h, w = img.shape[:2]
    if w > max_width or h > max_height:
        raise ImageError(413, "too_large", f"{name}: {w}x{h} is larger than the limit {max_width}x{max_height}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def header_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) from a PNG IHDR or a JPEG SOF header; None when not found."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            if length < 2:
                return None
            i += 2 + length
    return None


def _create_engine(name: str, checkpoint: Optional[str], device: str):
    engines = importlib.import_module("lagc_hand.engines")
    factory = getattr(engines, "create_engine", None)
    if factory is None:
        raise EngineUnavailable("no engine factory in this build (lagc_hand.engines.create_engine)")
    kwargs = {"device": device}
    if checkpoint:
        kwargs["checkpoint"] = checkpoint
    return factory(name, **kwargs)


def infer(images: list[np.ndarray], opts: FramesOptions, device: str) -> FramesResponse:
    """Run the engine over ``images`` (consecutive frames at ``opts.fps``)."""
    try:
        engine = _create_engine(opts.engine, opts.checkpoint, device)
    except LagcHandError as exc:
        raise ImageError(422, "engine_unavailable", str(exc)) from None
    try:
        out = []
        for i, img in enumerate(images):
            hands = engine.process(img, i / opts.fps)
            out.append(FrameResult(index=i, width=int(img.shape[1]), height=int(img.shape[0]), hands=[
                Observation(
                    keypoints2d=np.asarray(h.keypoints2d, dtype=float).tolist(),
                    keypoints3d=np.asarray(h.keypoints3d, dtype=float).tolist(),
                    handedness=float(h.handedness), score=float(h.score),
                    box=None if h.box is None else np.asarray(h.box, dtype=float).tolist(),
                ) for h in hands
            ]))
        return FramesResponse(engine=opts.engine, frames=out)
    except LagcHandError as exc:
        raise ImageError(422, "invalid_request", str(exc)) from None
    finally:
        engine.close()
