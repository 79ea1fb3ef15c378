"""Follow a hand through an occlusion by optical flow.

When one hand slides behind the other, the landmark model loses it long
before it is gone: with half of it hidden there is no palm for the palm
detector, and a crop centred on it returns the *front* hand (checked on the
rendered ``interact_occlude`` clip: given a region built from the hidden
hand's ground-truth keypoints, MediaPipe's landmark model returned nothing or
the *front* hand in every frame where the hidden hand was below ~75 % visible,
also with the front hand painted out).  Its visible parts -- fingers, an edge of the palm
-- still move with it, and pyramidal Lucas-Kanade flow tracks them well.

:func:`follow_hand` moves a hand's last keypoints from the previous frame to
this one:

1. points are sampled along the hand's bones (the 21 keypoints and points
   between them), so skin near every part of the hand is tracked;
2. points lying on the occluding hand(s) -- in the previous frame or where
   they land now -- are left out (their flow is the front hand's motion),
   and so are points whose forward-backward flow disagrees;
3. a similarity transform (rotation, uniform scale, translation in the image
   plane) is fitted to the remaining point pairs with RANSAC and applied to
   all 21 keypoints.  The hidden parts cannot be observed, so the hand moves
   rigidly; articulation is left as last seen.

The 3D keypoints (hand-relative, camera axes) turn by the same in-plane
rotation about the camera's z axis.

All pixel coordinates are full-image pixels, x right, y down.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from lagc_hand.engines.dedup import hand_size

#: Bones of the public (MediaPipe-order) keypoints, used to sample skin points and draw hand masks.
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
         (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (17, 18), (18, 19), (19, 20), (0, 17))
#: Palm outline (wrist, thumb CMC, index/middle/ring/pinky MCP).
PALM = (0, 1, 5, 9, 13, 17)


@dataclass
class FollowConfig:
    """Optical-flow following options.

    max_seconds:      a hand is followed at most this long after it was last detected.
    samples_per_bone: points sampled strictly between the two ends of each bone.
    mask_width:       width of an occluding hand's mask around its bones, in its hand sizes.
    fb_max:           largest forward-backward flow error, in hand sizes.
    ransac_tol:       RANSAC inlier tolerance, in hand sizes.
    min_points:       fewest inlier point pairs to accept a transform.
    min_fraction:     fewest inliers as a share of the sampled points.
    max_scale_step:   largest per-frame change of scale (|s - 1|).
    confidence_scale: confidence of a followed hand / that of its last detection.
    window:           Lucas-Kanade window (pixels) and pyramid levels.
    """

    max_seconds: float = 1.5
    samples_per_bone: int = 6
    mask_width: float = 0.2
    fb_max: float = 0.015
    ransac_tol: float = 0.05
    min_points: int = 12
    min_fraction: float = 0.15
    max_scale_step: float = 0.12
    confidence_scale: float = 0.6
    window: int = 21
    levels: int = 3


@dataclass
class FollowResult:
    """keypoints2d: (21, 2) pixels in this frame; rotation: in-plane angle (radians, image
    axes: +x towards +y) and scale of the fitted similarity; inliers / sampled: point counts."""

    keypoints2d: np.ndarray
    rotation: float
    scale: float
    inliers: int
    sampled: int


def skin_points(keypoints2d: np.ndarray, per_bone: int) -> np.ndarray:
    """(21 + 21 * per_bone, 2) points: the keypoints and ``per_bone`` points inside each bone."""
    kp = np.asarray(keypoints2d, np.float64)
    t = np.linspace(0.0, 1.0, per_bone + 2)[1:-1, None]
    pts = [kp] + [kp[a] * (1 - t) + kp[b] * t for a, b in BONES]
    return np.concatenate(pts).astype(np.float32)


def hands_mask(shape: tuple[int, int], hands: Sequence[np.ndarray], width: float) -> np.ndarray:
    """(H, W) uint8 mask, 255 on the given hands (each (21, 2) pixels): thick bones plus the palm."""
    import cv2

    m = np.zeros(shape[:2], np.uint8)
    for kp in hands:
        kp = np.asarray(kp, np.float64)
        th = max(int(round(width * hand_size(kp))), 2)
        for a, b in BONES:
            cv2.line(m, (int(kp[a, 0]), int(kp[a, 1])), (int(kp[b, 0]), int(kp[b, 1])), 255, th)
        cv2.fillPoly(m, [np.round(kp[list(PALM)]).astype(np.int32)], 255)
    return m


def _on_mask(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    H, W = mask.shape
    x = np.clip(np.round(pts[:, 0]).astype(int), 0, W - 1)
    y = np.clip(np.round(pts[:, 1]).astype(int), 0, H - 1)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < W) & (pts[:, 1] >= 0) & (pts[:, 1] < H)
    return (mask[y, x] > 0) | ~inside


def follow_hand(prev_gray: np.ndarray, gray: np.ndarray, keypoints2d: np.ndarray,
                occluders_prev: Sequence[np.ndarray], occluders_now: Sequence[np.ndarray],
                config: Optional[FollowConfig] = None) -> Optional[FollowResult]:
    """Move one hand's keypoints from the previous frame to this one.

    prev_gray, gray: (H, W) uint8 consecutive frames.
    keypoints2d:     (21, 2) the hand's keypoints in ``prev_gray`` (pixels).
    occluders_prev / occluders_now: other hands' (21, 2) keypoints in the previous / this frame;
                     points on them are not used.
    Returns None when too few points can be followed or the motion is implausible.
    """
    import cv2

    cfg = config or FollowConfig()
    kp = np.asarray(keypoints2d, np.float64)
    size = hand_size(kp)
    if not np.isfinite(size) or size < 4.0:
        return None
    pts = skin_points(kp, cfg.samples_per_bone)
    sampled = len(pts)
    pts = pts[~_on_mask(hands_mask(prev_gray.shape, occluders_prev, cfg.mask_width), pts)]
    if len(pts) < cfg.min_points:
        return None
    lk = dict(winSize=(cfg.window, cfg.window), maxLevel=cfg.levels,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, pts[:, None], None, **lk)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, fwd, None, **lk)
    fwd, back = fwd[:, 0], back[:, 0]
    good = (st1[:, 0] == 1) & (st2[:, 0] == 1)
    good &= np.linalg.norm(back - pts, axis=1) < cfg.fb_max * size
    good &= ~_on_mask(hands_mask(gray.shape, occluders_now, cfg.mask_width), fwd)
    if good.sum() < cfg.min_points:
        return None
    M, inl = cv2.estimateAffinePartial2D(pts[good], fwd[good], method=cv2.RANSAC,
                                         ransacReprojThreshold=cfg.ransac_tol * size)
    if M is None:
        return None
    n_in = int(inl.sum())
    if n_in < max(cfg.min_points, cfg.min_fraction * sampled):
        return None
    scale = float(np.hypot(M[0, 0], M[1, 0]))
    if abs(scale - 1.0) > cfg.max_scale_step:
        return None
    out = kp @ M[:, :2].T + M[:, 2]
    return FollowResult(out.astype(np.float32), float(np.arctan2(M[1, 0], M[0, 0])), scale, n_in, sampled)


def rotate_keypoints3d(keypoints3d: np.ndarray, angle: float) -> np.ndarray:
    """(21, 3) hand-relative camera-axes keypoints turned by ``angle`` (radians) about the
    camera's z axis, the same sense as an image rotation from +x towards +y."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], np.float32)
    k = np.asarray(keypoints3d, np.float32)
    centre = k.mean(0)
    return ((k - centre) @ R.T + centre).astype(np.float32)
