"""The one entry point every front end uses: :func:`reconstruct`.

The command line (``lagc-hand reconstruct``), the local server's job worker and
``lagc-hand batch`` all call :func:`reconstruct`; nothing else runs the
pipeline, so they all behave the same.
"""
from __future__ import annotations

from pathlib import Path

from lagc_hand.options import ReconstructOptions
from lagc_hand.pipeline import run_pipeline
from lagc_hand.progress import CancelCheck, Progress, ProgressCallback, ReconstructResult

__all__ = ["reconstruct", "ReconstructOptions", "ReconstructResult", "Progress", "ProgressCallback", "CancelCheck"]


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
    return run_pipeline(Path(video), options or ReconstructOptions(), progress, should_cancel)
