"""Occlusion bridging (tracking/occlusion.py): a hand that goes behind the other one and comes
back is filled in; a hand that leaves elsewhere, or hides too long, or whose occluder is not
seen, is not."""
from __future__ import annotations

import numpy as np

from lagc_hand.tracking.occlusion import OcclusionConfig, bridge_occlusions
from lagc_hand.tracking.tracker import HandTrack


def _hand2d(cx: float, cy: float, s: float = 60.0) -> np.ndarray:
    """(21, 2) hand-like keypoints centred near (cx, cy), size ~ s pixels."""
    ang = np.linspace(-0.6, 0.6, 5)
    pts = [[0, 0]] + [[np.sin(a) * r, -np.cos(a) * r] for a in ang for r in (0.5, 0.8, 1.0, 1.2)]
    return (np.array(pts) * s + [cx, cy]).astype(np.float32)


def _track(side: str, xs: np.ndarray, present: np.ndarray) -> HandTrack:
    T = len(xs)
    kp2 = np.stack([_hand2d(x, 300.0) for x in xs])
    kp3 = np.tile(np.linspace(0, 0.1, 63).reshape(21, 3), (T, 1, 1)).astype(np.float32)
    kp2[~present] = 0
    kp3[~present] = 0
    return HandTrack(side, present.copy(), kp2, kp3, np.where(present, 0.9, 0.0).astype(np.float32),
                     np.full(T, 0.5, np.float32))


def _scene(left_x: np.ndarray, left_present: np.ndarray, right_present: np.ndarray | None = None):
    T = len(left_x)
    right = _track("right", np.full(T, 300.0), np.ones(T, bool) if right_present is None else right_present)
    return {"left": _track("left", left_x, left_present), "right": right}


def test_hand_passing_behind_the_other_is_bridged_by_interpolation():
    T = 30
    x = np.linspace(420.0, 180.0, T)  # the left hand slides behind the right one (at x = 300)
    hidden = np.abs(x - 300) < 40
    tracks = _scene(x, ~hidden)
    gap = np.flatnonzero(hidden)
    n = bridge_occlusions(tracks, fps=30.0)
    left = tracks["left"]
    assert n == len(gap) > 0
    assert left.present.all() and left.bridged[gap].all() and not left.bridged[~hidden].any()
    # Linear motion: the interpolated keypoints are where the hand really was.
    truth = np.stack([_hand2d(v, 300.0) for v in x[gap]])
    assert np.abs(left.keypoints2d[gap] - truth).max() < 1e-3
    assert (left.confidence[gap] > 0).all() and (left.confidence[gap] < 0.9).all()
    assert not tracks["right"].bridged.any()


def test_hand_leaving_away_from_the_other_is_not_bridged():
    T = 30
    x = np.full(T, 700.0)  # far from the right hand (x = 300): out of sight for another reason
    present = np.ones(T, bool)
    present[10:20] = False
    tracks = _scene(x, present)
    assert bridge_occlusions(tracks, fps=30.0) == 0
    assert not tracks["left"].present[10:20].any()


def test_long_gap_or_unseen_occluder_is_not_bridged():
    T = 90
    x = np.full(T, 330.0)  # overlapping the right hand
    present = np.ones(T, bool)
    present[10:70] = False  # 2 s at 30 fps > max_gap_s
    assert bridge_occlusions(_scene(x, present), fps=30.0, cfg=OcclusionConfig(max_gap_s=1.5)) == 0
    assert bridge_occlusions(_scene(x, present), fps=30.0, cfg=OcclusionConfig(max_gap_s=2.5)) == 60
    short = np.ones(T, bool)
    short[10:20] = False
    right_gone = np.ones(T, bool)
    right_gone[15] = False  # the occluder itself was lost once in the gap
    assert bridge_occlusions(_scene(x, short, right_gone), fps=30.0) == 0
