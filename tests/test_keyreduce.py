"""core/keyreduce.reduce_hand_keys: the one key reduction of the add-on and the CLI
(numpy only; tests/blender/test_cleanup_ops.py runs both sides in the real bpy)."""
from __future__ import annotations

import numpy as np

from lagc_hand_blender.core import keyreduce
from lagc_hand_blender.core.rotations import axis_angle_to_quat, quat_angle_between


def _hand(n=100, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 30.0
    aa = np.zeros((n, 16, 3))
    aa[:, 0] = np.stack([np.sin(t), 0.5 * np.cos(2 * t), 0 * t], 1)
    aa[:, 1:, 0] = 0.4 + 0.3 * np.sin(3 * t + np.arange(15)[:, None] / 3).T
    aa[:, 7:10] = 0.2  # a still finger (pinky) needs only its end keys
    q = axis_angle_to_quat(aa)
    q[rng.random((n, 16)) < 0.3] *= -1  # sign is no information
    loc = np.stack([0.1 * np.sin(t), 0.02 * t, 0.0 * t], 1)
    return np.arange(n, dtype=float) * 2 + 11, q, loc


def test_per_channel_within_tolerance_gaps_respected():
    frames, q, loc = _hand()
    present = np.ones(len(frames), bool)
    present[40:46] = False
    tol = np.radians(0.5)
    keep = keyreduce.reduce_hand_keys(frames, present, q, loc, tol, 0.001)
    assert keep.shape == (100, 17) and not keep[40:46].any()
    assert keep[[0, 39, 46, 99]].all()  # both sides of the gap, both ends: every channel
    assert keep[:, 7:10].sum(axis=0).tolist() == [4, 4, 4]  # the still finger: segment ends only
    assert keep[:, 0].sum() > 4
    qe, xe = keyreduce.evaluate_hand_keys(frames, present, q, loc, keep)
    assert quat_angle_between(qe[present], q[present]).max() <= tol + 1e-9
    assert np.linalg.norm(xe[present] - loc[present], axis=-1).max() <= 0.001 + 1e-12
    np.testing.assert_array_equal(qe[~present], q[~present])
    assert keyreduce.fcurve_key_count(keep) == 4 * keep[:, :16].sum() + 3 * keep[:, 16].sum()
    # one present stretch reduced alone gives the same keys as inside the whole
    alone = keyreduce.reduce_hand_keys(frames[46:], present[46:], q[46:], loc[46:], tol, 0.001)
    np.testing.assert_array_equal(alone, keep[46:])


def test_range_keeps_outside_keys_and_its_neighbours():
    frames, q, loc = _hand()
    present = np.ones(len(frames), bool)
    keyed = np.zeros((100, 17), bool)
    keyed[::3] = True  # an earlier, sparser keying outside the range
    sel = np.zeros(100, bool)
    sel[30:60] = True
    keep = keyreduce.reduce_hand_keys(frames, present, q, loc, np.radians(1.0), 0.001, sel, keyed)
    out = ~sel
    out[[29, 60]] = False
    np.testing.assert_array_equal(keep[out], keyed[out] | np.isin(np.flatnonzero(out), [0, 99])[:, None])
    assert keep[[29, 30, 59, 60]].all()
    full = keyreduce.reduce_hand_keys(frames[30:60], present[30:60], q[30:60], loc[30:60], np.radians(1.0), 0.001)
    np.testing.assert_array_equal(keep[30:60], full)
