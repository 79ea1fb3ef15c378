"""Interaction units on constructed observations: de-duplication, chirality sides,
recovery crop geometry, and the two-hand fit reducing interpenetration."""
from __future__ import annotations

import numpy as np
import pytest

from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.dedup import dedupe, hand_size, same_hand
from lagc_hand.engines.recovery import Region, crop_region, crop_to_image, observation_from_crop, square_region
from lagc_hand.synth.scenes import RIGHTWARD, UP, orientation, posed_vertices
from lagc_hand.tracking.sides import chirality_score, side_costs, side_probability

SIDES = ("left", "right")


def _hand2d(cx, cy, s=60.0, mirror=False):
    ang = np.linspace(-0.6, 0.6, 5) * (-1 if mirror else 1)
    pts = [[0, 0]] + [[np.sin(a) * r, -np.cos(a) * r] for a in ang for r in (0.5, 0.8, 1.0, 1.2)]
    return (np.array(pts) * s + [cx, cy]).astype(np.float32)


def _obs(kp2d, score=0.9, p_right=0.5, k3=None):
    return HandObservation(keypoints2d=kp2d, keypoints3d=np.zeros((21, 3), np.float32) if k3 is None else k3,
                           handedness=p_right, score=score)


def test_dedup_merges_close_drops_mirrored_keeps_touching_hands():
    a = _hand2d(200, 200)
    near = _obs(a + np.random.default_rng(0).normal(0, 1.0, a.shape).astype(np.float32), 0.6, p_right=0.1)
    out = dedupe([_obs(a, 0.9, p_right=0.9), near])
    assert len(out) == 1 and out[0].extra.get("merged") == 1 and out[0].handedness == 0.9
    # Same box, thumb and pinky exchanged (the same hand fitted as its mirror image): one hand, not merged.
    mirrored = _obs(_hand2d(200, 200, mirror=True), 0.7)
    assert same_hand(out[0], mirrored)[0]
    out2 = dedupe([_obs(a, 0.9), mirrored])
    assert len(out2) == 1 and out2[0].score == 0.9 and "merged" not in out2[0].extra
    # Two hands side by side, touching (boxes overlap a little): both stay, whatever their labels.
    other = _obs(_hand2d(200 + 0.9 * hand_size(a), 200), 0.8, p_right=0.9)
    assert len(dedupe([_obs(a, 0.9, p_right=0.9), other])) == 2


@pytest.fixture(scope="module")
def palms(open_models):
    """Both open-model hands, relaxed, palms facing each other: (keypoints per side)."""
    from lagc_hand.synth.scenes import _finger_rotmats, _flex

    out = {}
    for s in SIDES:
        j = open_models[s].rest_joints()[0].numpy().astype(np.float64)
        fing = _finger_rotmats(j, s, _flex(0.4, 0.5, 0.3))[None]
        R = orientation(s, UP, RIGHTWARD if s == "right" else -RIGHTWARD)[None]
        _, kp = posed_vertices(open_models[s], R, fing, np.array([[0.0, 0.08, 0.45]]), keypoints=True)
        out[s] = kp[0]
    return out


def test_chirality_from_3d_keypoints(palms):
    assert chirality_score(palms["right"]) > 0.8
    assert chirality_score(palms["left"]) < -0.8
    # Mirroring a hand (x -> -x) flips its chirality; rotating it does not.
    assert chirality_score(palms["right"] * [-1, 1, 1]) < -0.8
    rot = orientation("right", [0.3, -1, 0.2], [0.5, 0.2, -1])
    assert chirality_score(palms["left"] @ rot.T) < -0.8


def test_side_costs_trust_chirality_over_the_label(palms):
    kp2 = _hand2d(500, 240)
    # A left hand with a confident "right" label, on the image's right: still left.
    obs = _obs(kp2, p_right=0.95, k3=palms["left"].astype(np.float32))
    cl, cr = side_costs(obs, 640)
    assert cl < cr and side_probability(obs, 640) < 0.4
    # Without 3D evidence the label and position decide.
    assert 0.6 < side_probability(_obs(_hand2d(100, 240), p_right=0.9), 640) < 0.8  # weak evidence only


def test_crop_mapping_round_trip_and_flip():
    img = np.zeros((480, 640, 3), np.uint8)
    img[100:110, 300:305] = 255  # a marker
    r = square_region(np.array([250.0, 50.0, 350.0, 170.0]), 1.5, "test")
    assert isinstance(r, Region) and r.side == pytest.approx(180.0)
    for flip in (False, True):
        crop = crop_region(img, r, 256, flip)
        ys, xs = np.nonzero(crop[..., 0] > 128)
        centre = crop_to_image(np.array([[xs.mean() + 0.5, ys.mean() + 0.5]]), r, 256, flip)[0]
        assert np.allclose(centre, [302.5, 105.0], atol=1.5), (flip, centre)
    # A hand found in a mirrored crop: x un-flipped, 3D un-mirrored, side inverted.
    kp = np.random.default_rng(1).uniform(0.3, 0.7, (21, 2))
    w3 = np.random.default_rng(2).normal(0, 0.03, (21, 3))
    plain = observation_from_crop(kp, w3, "Left", 0.9, r, 256, False)
    flipped = observation_from_crop(np.c_[1 - kp[:, 0], kp[:, 1]], w3 * [-1, 1, 1], "Right", 0.9, r, 256, True)
    assert plain.handedness == pytest.approx(0.9) and flipped.handedness == pytest.approx(0.9)
    assert np.allclose(plain.keypoints2d, flipped.keypoints2d, atol=1e-3)
    assert np.allclose(plain.keypoints3d, flipped.keypoints3d, atol=1e-6)
    assert flipped.extra["flipped"] and flipped.extra["recovered"] == "test"


def test_two_hand_fit_reduces_interpenetration(open_models):
    """Palm-to-palm hands whose targets overlap by 8-12 mm: the joint fit pushes them apart."""
    from lagc_hand.fitting import fit_hand
    from lagc_hand.fitting.penetration import penetration_depth
    from lagc_hand.synth.scenes import contact_gap
    from lagc_hand.fitting.two_hand import TwoHandConfig, fit_both_hands

    T = 4
    rel = {s: (orientation(s, UP, RIGHTWARD if s == "right" else -RIGHTWARD), np.zeros(3),
               np.tile(np.eye(3), (15, 1, 1))) for s in SIDES}
    gap = contact_gap(open_models, rel, 0.0)
    targets = {}
    for s in SIDES:
        x = (-1 if s == "right" else 1) * (gap / 2 - np.linspace(0.004, 0.006, T))
        wrist = np.stack([x, np.full(T, 0.08), np.full(T, 0.45)], 1)
        _, targets[s] = posed_vertices(open_models[s], np.repeat(rel[s][0][None], T, 0),
                                       np.tile(np.eye(3), (T, 15, 1, 1)), wrist, keypoints=True)
    present = {s: np.ones(T, bool) for s in SIDES}
    cfg = TwoHandConfig()
    joint = fit_both_hands(open_models, targets, present, config=cfg)
    single = {s: fit_hand(open_models[s], targets[s]) for s in SIDES}

    def depth(fits):
        import torch

        out = []
        for t in range(T):
            v = {}
            for s in SIDES:
                m = open_models[s]
                with torch.no_grad():
                    b = torch.as_tensor(fits[s].betas[None])
                    o = m.forward_rotmat(torch.as_tensor(fits[s].rotmats[t:t + 1]), b,
                                         torch.as_tensor(fits[s].root[t:t + 1]) - m.rest_joints(b)[0, 0])
                v[s] = o.vertices[0].numpy().astype(np.float64)
            a, _ = penetration_depth(v["left"][::2], v["right"], open_models["right"].faces.numpy())
            b_, _ = penetration_depth(v["right"][::2], v["left"], open_models["left"].faces.numpy())
            out.append(max(a, b_))
        return np.array(out)

    d_single, d_joint = depth(single), depth(joint)
    assert d_single.mean() > 0.003  # the constructed case does interpenetrate
    assert d_joint.mean() < 0.9 * d_single.mean(), (d_single, d_joint)
    assert cfg.stats["capsule_depth_after_mm"] < 0.7 * cfg.stats["capsule_depth_before_mm"]
    for s in SIDES:  # the hands still match their keypoints to within a centimetre
        assert joint[s].error.mean() < 0.01 and joint[s].keypoints3d.shape == (T, 21, 3)
