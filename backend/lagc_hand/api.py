"""The one entry point every front end uses: :func:`reconstruct`.

The command line (``lagc-hand reconstruct``), the local server's job worker and
``lagc-hand batch`` all call :func:`reconstruct`; nothing else runs the
pipeline, so they all behave the same.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from lagc_hand_blender.core.handmotion import HandMotion


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
                  each by its own engine in its own thread (0 = one per CPU core,
                  chunks of at least 48 frames; 1 = sequential).  Results depend on
                  this number (each chunk's tracker starts fresh), not on timing.
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


@dataclass
class Progress:
    """A progress report.  ``stage`` is one of ``decode``, ``detect``, ``track``,
    ``place``, ``fit``, ``cleanup``, ``write``, ``done``; ``frames_done`` /
    ``frames_total`` count frames of the detect stage (the slow one);
    ``fps`` is the detect stage's throughput so far."""

    stage: str
    frames_done: int = 0
    frames_total: int = 0
    fps: float = 0.0
    message: str = ""


@dataclass
class ReconstructResult:
    """motion: the result.  summary: JSON-able statistics (frames, hands found per
    frame %, identity switches, throughput) for printing and QA reports."""

    motion: HandMotion
    summary: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


def reconstruct(
    video: str | Path,
    options: ReconstructOptions | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> ReconstructResult:
    """Reconstruct both hands from ``video`` (a file or a folder of images).

    Raises :class:`lagc_hand.errors.InputError` for unreadable input,
    :class:`lagc_hand.errors.Cancelled` when ``should_cancel()`` turns true, and
    returns a motion with no hand present (not an error) when no hand is found.
    """
    from lagc_hand.pipeline import run_pipeline

    return run_pipeline(Path(video), options or ReconstructOptions(), progress, should_cancel)
