"""Cleanup: rotation-space smoothing, spikes, gap filling, strength 0 = raw."""
from __future__ import annotations

import numpy as np

from lagc_hand.cleanup import CleanConfig, clean_hand
from lagc_hand_blender.core import filters
from lagc_hand_blender.core.rotations import axis_angle_to_quat, quat_angle_between


def _motion(T=90, seed=0, noise_deg=3.0, noise_m=0.004):
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 30.0
    aa = np.zeros((T, 16, 3))
    aa[:, 0, 2] = 2.5 * np.sin(t)  # a big wrist rotation, crossing +-pi in quaternion sign
    aa[:, 1:, 0] = 0.6 + 0.4 * np.sin(2 * t)[:, None]
    clean_q = axis_angle_to_quat(aa)
    clean_r = np.stack([0.1 * np.sin(t), 0.05 * np.cos(t), 0.5 + 0 * t], 1)
    noisy_aa = aa + rng.normal(scale=np.radians(noise_deg), size=aa.shape)
    q = axis_angle_to_quat(noisy_aa)
    q[rng.random((T, 16)) < 0.5] *= -1  # random signs: q and -q are the same rotation
    r = clean_r + rng.normal(scale=noise_m, size=clean_r.shape)
    return clean_q, clean_r, q, r


def _accel(x):
    return np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean()


def test_smoothing_reduces_jitter_in_rotation_space():
    cq, cr, q, r = _motion()
    T = len(q)
    present = np.ones(T, bool)
    out = clean_hand(present, np.full(T, 0.9), q, r, np.zeros((T, 21, 2)), fps=30.0)
    err_raw = np.degrees(quat_angle_between(q, cq)).mean()
    err_clean = np.degrees(quat_angle_between(out.quats, cq)).mean()
    assert err_clean < 0.6 * err_raw
    assert _accel(out.root) < 0.3 * _accel(r)
    assert np.abs(np.linalg.norm(out.quats, axis=-1) - 1).max() < 1e-5
    assert np.linalg.norm(out.root - cr, axis=1).mean() < np.linalg.norm(r - cr, axis=1).mean()


def test_strength_zero_is_raw():
    _, _, q, r = _motion()
    T = len(q)
    present = np.ones(T, bool)
    present[40:43] = False
    out = clean_hand(present, np.full(T, 0.9), q, r, np.zeros((T, 21, 2)), 30.0, CleanConfig(strength=0))
    np.testing.assert_array_equal(out.present, present)
    np.testing.assert_allclose(out.quats, q.astype(np.float32))
    np.testing.assert_allclose(out.root, r.astype(np.float32))


def test_gaps_short_filled_long_kept_and_spike_removed():
    cq, cr, _, _ = _motion(noise_deg=0, noise_m=0)
    T = len(cq)
    q, r = cq.copy(), cr.copy()
    present = np.ones(T, bool)
    present[20:24] = False  # short: bridged
    present[50:75] = False  # long: stays absent
    r[35] += [0.0, 0.15, 0.0]  # a one-frame spike
    conf = np.full(T, 0.8)
    out = clean_hand(present, conf, q, r, np.zeros((T, 21, 2)), 30.0)
    assert out.present[20:24].all() and out.filled[20:24].all()
    assert not out.present[50:75].any()
    assert out.spikes[35] and not out.spikes[:35].any()
    assert np.linalg.norm(out.root[35] - cr[35]) < 0.01
    assert np.degrees(quat_angle_between(out.quats[20:24], cq[20:24])).max() < 2.0
    assert np.all(out.confidence[20:24] < 0.8) and np.all(out.confidence[20:24] > 0)
    assert np.all(out.confidence[50:75] == 0)


def test_filters_segments_and_no_smoothing_across_gaps():
    p = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0], bool)
    assert filters.segments(p) == [(1, 3), (5, 8)]
    x = np.array([0, 1, 1, 0, 0, 5, 5, 5, 0], float)[:, None]
    y = filters.gaussian_smooth(x, p, sigma=2.0)
    np.testing.assert_allclose(y[1:3, 0], 1.0)  # not pulled towards the other segment
    np.testing.assert_allclose(y[5:8, 0], 5.0)


def _despike_by_loop(x, present, threshold, window):
    """The definition, one sample at a time (one channel)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    spikes = np.zeros(len(x), bool)
    for s, e in filters.segments(present):
        for t in range(s + 1, e - 1):
            ml = np.median(x[max(s, t - window):t], 0)
            mh = np.median(x[t + 1:min(e, t + 1 + window)], 0)
            if np.linalg.norm(x[t] - 0.5 * (ml + mh)) > threshold and np.linalg.norm(ml - mh) < threshold:
                spikes[t] = True
    return spikes


def test_the_one_spike_detector_finds_spikes_not_fast_moves_and_matches_its_definition():
    """filters.despike (the pipeline's root despiking and the edits' Remove Spikes):
    injected 1- and 2-sample spikes found, a fast step and segment ends not; per
    channel with per-channel thresholds; equal to the per-sample definition."""
    rng = np.random.default_rng(4)
    T = 120
    x = np.cumsum(rng.normal(scale=0.002, size=(T, 3)), axis=0)
    x[60:] += [0.2, 0, 0]  # a real fast move: a step that stays
    x[30] += [0, 0.1, 0]
    x[90:92] += [0, 0, -0.1]  # a two-sample spike
    x[100] += [0, 0.1, 0]  # ... next to a gap: segment end at 101
    present = np.ones(T, bool)
    present[101:105] = False
    for window in (2, 3):
        got = filters.despike(x, present, 0.04, window)
        np.testing.assert_array_equal(got, _despike_by_loop(x, present, 0.04, window))
        assert got[30] and not got[55:65].any() and not got[100]
    assert filters.despike(x, present, 0.04, 3)[[90, 91]].all()
    # channels: (T, C, D) with one threshold per channel
    chans = np.stack([x, 10 * x], axis=1)
    got = filters.despike(chans, present, np.array([0.04, 0.4]), 3)
    assert got.shape == (T, 2)
    np.testing.assert_array_equal(got[:, 0], _despike_by_loop(x, present, 0.04, 3))
    np.testing.assert_array_equal(got[:, 1], _despike_by_loop(10 * x, present, 0.4, 3))
    assert not filters.despike(x[:2], present[:2], 0.04).any()


def test_no_smoothing_or_bridging_across_a_jump():
    """A track that jumps to another place (one hand's track taking over the
    other's, slpio_asl_different f31-33) stays two pieces: neither smoothed into a
    drift across the image nor bridged over a gap between the two places."""
    from lagc_hand_blender.core.rotations import axis_angle_to_quat

    T, jump = 40, 20
    q = axis_angle_to_quat(np.zeros((T, 16, 3)))
    root = np.zeros((T, 3))
    root[:, 2] = 0.5
    root[:jump, 0], root[jump:, 0] = -0.15, 0.15
    k2 = np.zeros((T, 21, 2))
    k2[:, :, 0] = np.where(np.arange(T) < jump, 170.0, 470.0)[:, None] + np.linspace(-30, 30, 21)
    k2[:, :, 1] = 240.0 + np.linspace(-40, 40, 21)
    present = np.ones(T, bool)
    out = clean_hand(present, np.ones(T), q, root, k2, 30.0)
    np.testing.assert_allclose(out.root[:, 0], root[:, 0], atol=1e-6)
    np.testing.assert_allclose(out.keypoints2d, k2, atol=1e-4)
    # With a 3-frame gap at the jump, the gap stays open (bridging would draw the drift).
    present[jump - 1:jump + 2] = False
    out = clean_hand(present, np.ones(T), q, root, k2, 30.0)
    assert not out.present[jump - 1:jump + 2].any() and not out.filled.any()
    np.testing.assert_allclose(out.root[present, 0], root[present, 0], atol=1e-6)
