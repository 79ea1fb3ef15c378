"""Bridge the frames where one hand is hidden behind the other.

When one hand passes behind the other (or the two interlace), the detector
loses the hidden one for a while although it is still in the picture, partly
visible.  For an animation the hand must not vanish and pop back: if a track
disappears *into* the other hand and comes back *out of* it, and the other
hand was seen all the time in between, the gap is explained by occlusion and
is filled by interpolating the hand between the two ends.

Gap rule (all must hold), for a gap of track X (frames a..b, X seen at a-1 and b+1):

* the other track Y is present in every frame a-1..b+1 (the occluder was seen);
* at both ends X's keypoint box touches Y's box enlarged by ``margin`` hand
  sizes (X went behind Y and came out of it), and every interpolated box in
  the gap does too (X stayed behind Y);
* the gap is at most ``max_gap_s`` seconds.

Filled frames: 2D keypoints are interpolated linearly in the image, the
hand-relative 3D keypoints by :func:`interpolate_hand3d` (the rigid turn
between the two ends by slerp, the finger articulation linearly; a plain
linear blend of two differently oriented hands shrinks the hand in between);
confidence is ``confidence_scale`` x the lower end confidence, so anything downstream that weighs by confidence trusts them less; they are
flagged in :attr:`HandTrack.bridged`.  Gaps that are not explained by the
other hand stay absent (a hand that left the picture is not invented).

Frames the engine *followed* by optical flow while the hand was hidden
(:attr:`HandTrack.followed`) have image evidence for where the hand is, but
their 3D keypoints are the last detection's, only turned in the image plane:
the fingers freeze.  When such a run is closed by detections on both sides,
:func:`blend_followed` replaces its hand-relative 3D keypoints by the same
interpolation between the two detections (the 2D keypoints stay the flow's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lagc_hand.engines.dedup import hand_size, keypoint_box
from lagc_hand_blender.core.rotations import (axis_angle_to_quat, kabsch_rotation, matrix_to_quat, quat_to_axis_angle,
                                              quat_to_matrix)


@dataclass
class OcclusionConfig:
    """max_gap_s: seconds; margin: hand sizes (box enlargement of the occluder);
    confidence_scale: confidence of a bridged frame / the lower end's confidence."""

    max_gap_s: float = 1.5
    margin: float = 0.25
    confidence_scale: float = 0.3


def _touches(kp_hidden: np.ndarray, kp_occluder: np.ndarray, margin: float) -> bool:
    """Whether the hidden hand's box meets the occluder's box enlarged by ``margin`` hand sizes."""
    a = keypoint_box(kp_hidden)
    b = keypoint_box(kp_occluder)
    m = margin * hand_size(kp_occluder)
    return bool(a[0] <= b[2] + m and b[0] - m <= a[2] and a[1] <= b[3] + m and b[1] - m <= a[3])


def _gaps(present: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) absent frames of each interior gap (seen before and after)."""
    out = []
    seen = np.flatnonzero(present)
    for i, j in zip(seen[:-1], seen[1:]):
        if j > i + 1:
            out.append((int(i + 1), int(j - 1)))
    return out


def interpolate_hand3d(j0: np.ndarray, j1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Hand-relative 3D keypoints between two frames.

    j0, j1: (21, 3) metres at the two ends; w: (N,) weights in [0, 1] (0 = j0).
    Returns (N, 21, 3): the best rigid rotation R from j0 to j1 (Kabsch, about the
    centroids) applied by the fraction w (slerp from the identity), to the articulation
    blended linearly in j0's orientation; centroids blend linearly.  w = 0 gives j0,
    w = 1 gives j1 exactly.
    """
    j0 = np.asarray(j0, np.float64)
    j1 = np.asarray(j1, np.float64)
    c0, c1 = j0.mean(0), j1.mean(0)
    A, B = j0 - c0, j1 - c1
    R = kabsch_rotation(j0, j1[None])[0]  # B ~ A @ R.T
    rotvec = quat_to_axis_angle(matrix_to_quat(R))
    w = np.asarray(w, np.float64).reshape(-1, 1, 1)
    Rw = quat_to_matrix(axis_angle_to_quat(w[:, :, 0] * rotvec))  # (N, 3, 3)
    B_in_a = B @ R  # j1's articulation seen in j0's orientation
    blend = (1 - w) * A + w * B_in_a  # (N, 21, 3)
    return blend @ np.swapaxes(Rw, 1, 2) + (1 - w) * c0 + w * c1


def blend_followed(tracks: dict, fps: float, cfg: OcclusionConfig | None = None) -> int:
    """Interpolate the hand-relative 3D keypoints of followed runs between the detections
    that close them (in place).  Runs longer than ``max_gap_s`` or open at either end keep
    the engine's keypoints.  Returns the number of frames changed."""
    cfg = cfg or OcclusionConfig()
    max_gap = int(np.floor(cfg.max_gap_s * fps))
    changed = 0
    for x in tracks.values():
        detected = x.present & ~x.followed
        for a, b in _gaps(detected):
            if b - a + 1 > max_gap or not x.followed[a:b + 1].all():
                continue
            w = (np.arange(a, b + 1) - (a - 1)) / (b - a + 2)
            x.keypoints3d[a:b + 1] = interpolate_hand3d(x.keypoints3d[a - 1], x.keypoints3d[b + 1], w)
            changed += b - a + 1
    return changed


def bridge_occlusions(tracks: dict, fps: float, cfg: OcclusionConfig | None = None) -> int:
    """Fill the occlusion gaps of ``tracks`` (side -> :class:`HandTrack`) in place.

    fps: frames per second of the tracked frames.  Returns the number of frames filled.
    """
    cfg = cfg or OcclusionConfig()
    max_gap = int(np.floor(cfg.max_gap_s * fps))
    sides = list(tracks)
    filled = 0
    # Gaps are found on the tracks as detected: a bridged frame never serves as the occluder.
    observed = {s: tracks[s].present.copy() for s in sides}
    for s in sides:
        x = tracks[s]
        for o in sides:
            if o == s:
                continue
            y = tracks[o]
            for a, b in _gaps(observed[s]):
                if b - a + 1 > max_gap or not observed[o][a - 1:b + 2].all():
                    continue
                k0, k1 = x.keypoints2d[a - 1].astype(np.float64), x.keypoints2d[b + 1].astype(np.float64)
                if not (_touches(k0, y.keypoints2d[a - 1], cfg.margin)
                        and _touches(k1, y.keypoints2d[b + 1], cfg.margin)):
                    continue
                n = b - a + 2
                w = (np.arange(a, b + 1) - (a - 1))[:, None, None] / n  # (gap, 1, 1), 0..1 exclusive
                kp2 = (1 - w) * k0 + w * k1
                if not all(_touches(kp2[i], y.keypoints2d[a + i], cfg.margin) for i in range(len(kp2))):
                    continue
                x.keypoints2d[a:b + 1] = kp2
                x.keypoints3d[a:b + 1] = interpolate_hand3d(x.keypoints3d[a - 1], x.keypoints3d[b + 1], w[:, 0, 0])
                x.present[a:b + 1] = True
                x.confidence[a:b + 1] = cfg.confidence_scale * min(x.confidence[a - 1], x.confidence[b + 1])
                x.handedness[a:b + 1] = 0.5
                x.bridged[a:b + 1] = True
                filled += b - a + 1
    return filled
