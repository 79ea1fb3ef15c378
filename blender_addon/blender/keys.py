"""Bulk keyframe writing: one ``keyframe_points.add`` + ``foreach_set`` per F-Curve.

Per-key ``keyframe_insert`` costs a Python round trip and an F-Curve re-sort per
key; writing whole contiguous float32 arrays at once is what Blender's own baker
does and is orders of magnitude faster (see ``bench/addon_import.py``).
"""
from __future__ import annotations

import numpy as np

from ..core.rig import change_points
from . import compat


_FILLED: dict = {}


def _filled(n: int, value: int) -> np.ndarray:
    """A cached (n,) int32 array of ``value`` (every F-Curve of a hand has the same length)."""
    arr = _FILLED.get((n, value))
    if arr is None:
        if len(_FILLED) > 16:
            _FILLED.clear()
        arr = _FILLED[(n, value)] = np.full(n, value, dtype=np.int32)
    return arr


def write_keys(fcurve, frames: np.ndarray, values: np.ndarray, interpolation: str = 'LINEAR',
               key_types: np.ndarray | None = None) -> None:
    """Append keys to an empty F-Curve in one go.

    frames:    (N,) scene frames, strictly increasing (no re-sort is done).
    values:    (N,) values.
    key_types: optional (N,) int32 Keyframe ``type`` enum values (see
               :func:`compat.keyframe_type_value`).
    """
    n = int(len(frames))
    if n == 0:
        return
    co = np.empty((n, 2), dtype=np.float32)
    co[:, 0] = frames
    co[:, 1] = values
    points = fcurve.keyframe_points
    points.add(n)
    points.foreach_set("co", co.ravel())
    points.foreach_set("interpolation", _filled(n, compat.interpolation_value(interpolation)))
    # New keys are already 'KEYFRAME': only write types when some key differs.
    if key_types is not None and np.any(key_types != compat.keyframe_type_value('KEYFRAME')):
        points.foreach_set("type", np.ascontiguousarray(key_types, dtype=np.int32))
    # Keys are sorted and unique, and linear/constant keys ignore handles, so the
    # costly fcurve.update() (re-sort + handle recalculation) is not needed.


def write_vector(writer: compat.ChannelWriter, data_path: str, group: str, frames: np.ndarray,
                 values: np.ndarray, interpolation: str = 'LINEAR',
                 key_types: np.ndarray | None = None) -> list:
    """One F-Curve per column of ``values`` (N, C); returns the F-Curves."""
    values = np.asarray(values)
    out = []
    for c in range(values.shape[1]):
        fc = writer.new(data_path, c, group)
        write_keys(fc, frames, values[:, c], interpolation, key_types)
        out.append(fc)
    return out


def visibility_keys(present: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Constant ``hide_*`` keys at the frames where presence changes.

    present: (T,) bool; frames: (T,) scene frames.
    returns (frames (K,), hidden (K,) float32 0/1).
    """
    present = np.asarray(present, dtype=bool)
    idx = change_points(present)
    return np.asarray(frames, np.float32)[idx], (~present[idx]).astype(np.float32)
