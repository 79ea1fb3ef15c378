"""What a running reconstruction reports (:class:`Progress`) and returns
(:class:`ReconstructResult`); the callback types front ends pass in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from lagc_hand_blender.core.handmotion import HandMotion


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
