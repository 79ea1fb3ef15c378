"""Occlusion bridging (tracking/occlusion.py): a hand that goes behind the other one and comes
back is filled in; a hand that leaves elsewhere, or hides too long, or whose occluder is not
seen, is not."""
from __future__ import annotations

import numpy as np

from lagc_hand.tracking.occlusion import OcclusionConfig, blend_followed, bridge_occlusions, interpolate_hand3d
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


def _pairwise(k: np.ndarray) -> np.ndarray:
    return np.linalg.norm(k[:, None] - k[None], axis=-1)


def test_hand3d_interpolation_turns_the_hand_rigidly_and_hits_both_ends():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(3)
    j0 = rng.normal(size=(21, 3)) * 0.04
    R = Rotation.from_rotvec([0.3, -0.2, 1.4]).as_matrix()
    j1 = j0 @ R.T + [0.05, 0.0, 0.01]
    w = np.array([0.0, 0.25, 0.5, 1.0])
    out = interpolate_hand3d(j0, j1, w)
    assert out.shape == (4, 21, 3)
    assert np.allclose(out[0], j0, atol=1e-9) and np.allclose(out[-1], j1, atol=1e-9)
    # A purely rigid change stays rigid in between (a linear blend would shrink the hand ~40 %).
    for k in out[1:3]:
        assert np.abs(_pairwise(k) - _pairwise(j0)).max() < 1e-9
    assert np.abs(_pairwise(0.5 * j0 + 0.5 * j1) - _pairwise(j0)).max() > 0.01
    # Halfway, the hand is turned halfway (angle of the rigid fit from j0).
    half = Rotation.align_vectors(out[2] - out[2].mean(0), j0 - j0.mean(0))[0].magnitude()
    assert abs(half - 0.5 * Rotation.from_matrix(R).magnitude()) < 1e-6


def test_followed_run_closed_by_detections_gets_interpolated_3d_but_keeps_its_2d():
    T = 20
    x = np.linspace(420.0, 180.0, T)
    tracks = _scene(x, np.ones(T, bool))
    left = tracks["left"]
    left.followed[8:12] = True
    # The followed frames carry a stale 3D hand (the engine's last detection, frozen).
    left.keypoints3d[8:12] = 0.5 * left.keypoints3d[7]
    kp2 = left.keypoints2d.copy()
    assert blend_followed(tracks, fps=30.0) == 4
    assert np.allclose(left.keypoints3d[8:12], left.keypoints3d[7], atol=1e-6)  # both ends equal here
    assert np.array_equal(left.keypoints2d, kp2)
    # A followed run open at the clip's end is left as the engine gave it.
    left.followed[:] = False
    left.followed[16:] = True
    left.keypoints3d[16:] = 0.0
    assert blend_followed(tracks, fps=30.0) == 0
    assert not left.keypoints3d[16:].any()
