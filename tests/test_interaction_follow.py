"""Optical-flow following of a hidden hand (lagc_hand.engines.follow) on the rendered
interacting-hands clips: the real video, real OpenCV flow, ground truth from the renderer."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from lagc_hand.engines.dedup import hand_size
from lagc_hand.engines.follow import FollowConfig, follow_hand, hands_mask, rotate_keypoints3d, skin_points
from lagc_hand.video import open_video

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"


@functools.lru_cache(maxsize=None)
def _gray_frames(clip: str) -> list[np.ndarray]:
    import cv2

    return [cv2.cvtColor(fr.image, cv2.COLOR_RGB2GRAY) for fr in open_video(SAMPLES / f"interact_{clip}.mp4").frames()]


def _errors(clip: str, side: str, start: int, end: int) -> list[float]:
    """Follow ``side`` from its GT keypoints at ``start`` to ``end``, the other hand's GT as the
    occluder; mean 2D error per frame in hand sizes (inf once lost)."""
    frames = _gray_frames(clip)
    gt = np.load(SAMPLES / f"interact_{clip}.npz")
    other = "right" if side == "left" else "left"
    kp = gt[f"{side}_keypoints2d"][start]
    out = []
    for t in range(start + 1, end + 1):
        res = follow_hand(frames[t - 1], frames[t], kp, [gt[f"{other}_keypoints2d"][t - 1]],
                          [gt[f"{other}_keypoints2d"][t]])
        if res is None:
            out.append(np.inf)
            break
        kp = res.keypoints2d
        g = gt[f"{side}_keypoints2d"][t]
        out.append(float(np.linalg.norm(kp - g, axis=1).mean() / hand_size(g)))
    return out


def test_follows_a_hand_sliding_behind_the_other():
    # interact_occlude: the left hand slides behind the right one (43-74 % unhidden in frames
    # 10-24); raw MediaPipe loses it from frame 10.  Measured: error <= 0.045 hand sizes throughout.
    gt = np.load(SAMPLES / "interact_occlude.npz")
    assert gt["left_visible"][10:25].min() < 0.5
    err = _errors("occlude", "left", 9, 24)
    assert len(err) == 15 and np.isfinite(err).all()
    assert max(err) < 0.1, err


def test_follows_through_articulation_within_the_tracking_tolerance():
    # interact_interlace: the fingers of the right hand slide between the left's (55-91 %
    # unhidden); the rigid follow ignores the fingers' motion, measured error <= 0.10 hand sizes,
    # well below the 0.5 the tracker and the benchmark accept as "on this hand".
    err = _errors("interlace", "right", 14, 24)
    assert len(err) == 10 and np.isfinite(err).all() and max(err) < 0.2, err


def test_a_hand_turning_edge_on_is_given_up():
    # interact_pray: the right hand turns edge-on (its image shrinks ~30 % in one frame); no
    # similarity explains that, so following stops (the tracker's interpolation takes over).
    assert _errors("pray", "right", 16, 23) == [np.inf]


def test_a_hand_that_vanishes_is_not_followed():
    frames = _gray_frames("occlude")
    gt = np.load(SAMPLES / "interact_occlude.npz")
    blank = np.full_like(frames[10], int(np.median(frames[10])))
    assert follow_hand(frames[9], blank, gt["left_keypoints2d"][9], [], []) is None
    # Everything it could track lies under the occluder: nothing to follow either.
    right = gt["right_keypoints2d"]
    assert follow_hand(frames[9], frames[10], right[9], [right[9]], [right[10]]) is None


def test_same_frame_is_identity():
    frames = _gray_frames("occlude")
    kp = np.load(SAMPLES / "interact_occlude.npz")["left_keypoints2d"][5]
    res = follow_hand(frames[5], frames[5], kp, [], [])
    assert res is not None
    assert np.abs(res.keypoints2d - kp).max() < 0.5
    assert abs(res.rotation) < 1e-2 and abs(res.scale - 1) < 1e-2
    assert res.inliers >= 0.9 * res.sampled


def test_rotation_of_3d_keypoints_matches_the_image_rotation():
    # Image axes x right, y down; a rotation from +x towards +y turns +x into +y, about the centroid.
    k = np.array([[1.0, 0.0, 2.0], [-1.0, 0.0, 2.0]] + [[0.0, 0.0, 2.0]] * 19, np.float32)
    r = rotate_keypoints3d(k, np.pi / 2)
    c = k.mean(0)
    assert np.allclose(r[0] - c, [0.0, 1.0, 0.0], atol=1e-6)
    assert np.allclose(r[:, 2], k[:, 2])
    # Lengths are kept.
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    assert np.allclose(d(r), d(k), atol=1e-5)


def test_masks_and_samples():
    kp = np.load(SAMPLES / "interact_occlude.npz")["right_keypoints2d"][0]
    pts = skin_points(kp, 4)
    assert pts.shape == (21 + 21 * 4, 2)
    m = hands_mask((480, 640), [kp], FollowConfig().mask_width)
    assert m.dtype == np.uint8 and m.shape == (480, 640)
    x, y = np.round(pts).astype(int).T
    assert (m[y, x] > 0).all()  # every sampled point lies on the hand's own mask
    assert 0 < (m > 0).mean() < 0.2


@pytest.mark.parametrize("bad", [np.zeros((21, 2)), np.full((21, 2), np.nan)])
def test_degenerate_hand_is_refused(bad):
    frames = _gray_frames("occlude")
    assert follow_hand(frames[0], frames[1], bad, [], []) is None
