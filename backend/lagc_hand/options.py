"""The options of one reconstruction, the same on the CLI, the server, batch and
the add-on."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional


@dataclass
class ReconstructOptions:
    """Options of one reconstruction (the same on the CLI, the server and batch).

    engine:       ``"mediapipe"`` (default, CPU) or ``"lagc"`` (needs ``checkpoint``).
    checkpoint:   path of a LAGC-Hand checkpoint, for ``engine="lagc"``.
    focal_mm:     focal length in 35 mm-equivalent millimetres (36 mm sensor width);
                  takes precedence over ``fov_deg``.
    fov_deg:      horizontal field of view in degrees; default when neither is given
                  is :data:`lagc_hand.placement.DEFAULT_HFOV_DEG`.
    frame_start:  first source frame (inclusive, 0-based).
    frame_end:    last source frame (exclusive); ``None`` = to the end.
    stride:       keep every ``stride``-th frame.
    smoothing:    cleanup strength; 0 = raw (cleaned == raw), 1 = default.
    hand_model:   ``"open"`` (embedded model) or a folder holding official
                  ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (or ``.npz``).
    device:       ``"auto"``, ``"cpu"`` or ``"cuda"`` for the torch stages.
    detect_workers: how many contiguous chunks of the video are detected at once,
                  each by its own engine in its own thread (0 = one per CPU core;
                  1 = one chunk after the other).  The chunks come from the video
                  alone, so results do not depend on this number (nor on timing).
    """

    engine: str = "mediapipe"
    checkpoint: Optional[str] = None
    focal_mm: Optional[float] = None
    fov_deg: Optional[float] = None
    frame_start: int = 0
    frame_end: Optional[int] = None
    stride: int = 1
    smoothing: float = 1.0
    hand_model: str = "open"
    device: str = "auto"
    detect_workers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
