"""Tracking: label flips, crossings, phantoms, duplicates, a hand leaving and coming back."""
from __future__ import annotations

import numpy as np

from lagc_hand.engines.base import FrameObservations, HandObservation
from lagc_hand.tracking import chirality_evidence, track_hands


def _hand2d(cx, cy, s=60.0):
    """A hand-like 2D keypoint layout (21, 2) centred near (cx, cy)."""
    ang = np.linspace(-0.6, 0.6, 5)
    pts = [[0, 0]]
    for a in ang:
        for r in (0.5, 0.8, 1.0, 1.2):
            pts.append([np.sin(a) * r, -np.cos(a) * r])
    return (np.array(pts) * s + [cx, cy]).astype(np.float32)


def _curled(right: bool):
    """3D keypoints whose chirality says right or left (fingers curl to the palm side)."""
    k = np.zeros((21, 3))
    k[5], k[9], k[13], k[17] = [0.03, -0.08, 0], [0.01, -0.09, 0], [-0.01, -0.085, 0], [-0.03, -0.075, 0]
    if not right:
        k[..., 0] *= -1
    n = np.cross(k[5] - k[0], k[17] - k[0])
    n /= np.linalg.norm(n)
    palm = n if right else -n  # n points out of the palm of a right hand, out of the back of a left one
    for base, first in ((1, 0), (5, 5), (9, 9), (13, 13), (17, 17)):
        for i in range(1, 4 if base != 1 else 4):
            if base + i - (0 if base != 1 else 1) > 20:
                break
            idx = base + i if base != 1 else base + i - 1
            k[idx] = k[first] + [0, -0.02 * i, 0] + palm * 0.015 * i
    return k.astype(np.float32)


def _obs(cx, cy, right, p_right=None, score=0.9):
    return HandObservation(keypoints2d=_hand2d(cx, cy), keypoints3d=_curled(right),
                           handedness=p_right if p_right is not None else (0.9 if right else 0.1), score=score)


def test_chirality_sign():
    assert chirality_evidence(_curled(True)) > 0.5
    assert chirality_evidence(_curled(False)) < -0.5
    assert abs(chirality_evidence(np.zeros((21, 3)))) < 1e-6


def test_label_flips_are_fixed_by_continuity():
    rng = np.random.default_rng(0)
    frames = []
    for t in range(60):
        right_x, left_x = 200 + t, 450 - t * 0.5
        flip = rng.random() < 0.3  # the engine swaps its labels on 30% of frames
        hands = [_obs(right_x, 240, True, p_right=0.2 if flip else 0.85),
                 _obs(left_x, 240, False, p_right=0.8 if flip else 0.15)]
        if t % 2:
            hands = hands[::-1]  # detection order means nothing
        frames.append(FrameObservations(t, t / 30, hands))
    res = track_hands(frames)
    r, l = res.tracks["right"], res.tracks["left"]
    assert r.present.all() and l.present.all()
    np.testing.assert_allclose(r.keypoints2d[:, 0, 0], 200 + np.arange(60), atol=1e-4)
    assert res.identity_switches == 0
    assert res.label_flips_fixed > 5


def test_crossing_keeps_identity():
    frames = []
    for t in range(40):
        x_r = 150 + 10 * t  # right hand moves right, left hand moves left: they cross at t~17
        x_l = 500 - 10 * t
        frames.append(FrameObservations(t, t / 30, [_obs(x_l, 240, False, p_right=0.5), _obs(x_r, 250, True, p_right=0.5)]))
    # Weak, undecided labels during the whole clip except a few early frames.
    for t in range(5):
        frames[t].hands[1].handedness, frames[t].hands[0].handedness = 0.9, 0.1
    res = track_hands(frames)
    np.testing.assert_allclose(res.tracks["right"].keypoints2d[:, 0, 0], 150 + 10 * np.arange(40), atol=1e-4)
    assert res.identity_switches == 0


def test_phantom_duplicate_and_reentry():
    frames = []
    for t in range(50):
        hands = []
        if not (20 <= t < 30):  # the right hand leaves for 10 frames and comes back
            hands.append(_obs(200, 240, True))
            if t == 10:  # a duplicate detection on the same hand
                hands.append(_obs(203, 241, True, score=0.6))
        hands.append(_obs(450, 240, False))
        if t == 40:  # a low-score phantom
            hands.append(_obs(320, 100, True, score=0.2))
        frames.append(FrameObservations(t, t / 30, hands))
    res = track_hands(frames)
    r = res.tracks["right"]
    assert r.present.sum() == 40 and not r.present[20:30].any()
    assert res.tracks["left"].present.all()
    assert np.all(res.tracks["left"].keypoints2d[:, 0, 0] == 450)
    assert res.dropped >= 2
