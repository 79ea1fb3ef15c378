"""Placement: intrinsics from focal / FOV, translation-only PnP on synthetic hands."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lagc_hand.errors import InputError
from lagc_hand.placement import DEFAULT_HFOV_DEG, intrinsics_matrix, place_hand, solve_translation


def _hand(rng, n=21):
    """A hand-sized point cloud (metres, about 18 cm long) around its centre."""
    pts = rng.normal(size=(n, 3)) * np.array([0.03, 0.05, 0.015])
    return pts - pts.mean(0)


def _project(P, K):
    return P[..., :2] / P[..., 2:3] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]


def test_intrinsics():
    K = intrinsics_matrix(640, 480, focal_mm=36.0)
    assert K[0, 0] == pytest.approx(640.0) and K[1, 1] == pytest.approx(640.0)
    assert (K[0, 2], K[1, 2]) == (320.0, 240.0)
    K = intrinsics_matrix(640, 480, fov_deg=90.0)
    assert K[0, 0] == pytest.approx(320.0)
    K = intrinsics_matrix(1000, 500)
    assert 2 * math.degrees(math.atan(500 / K[0, 0])) == pytest.approx(DEFAULT_HFOV_DEG)
    # focal wins over fov
    assert intrinsics_matrix(640, 480, focal_mm=18, fov_deg=90)[0, 0] == pytest.approx(320.0)
    for kw in ({"focal_mm": 0.0}, {"fov_deg": 180.0}, {"fov_deg": float("nan")}):
        with pytest.raises(InputError):
            intrinsics_matrix(640, 480, **kw)


def test_pnp_recovers_translation_exactly():
    rng = np.random.default_rng(1)
    K = intrinsics_matrix(640, 480, fov_deg=60)
    T = 50
    X = np.stack([_hand(rng) for _ in range(T)])
    t_true = np.stack([rng.uniform(-0.2, 0.2, T), rng.uniform(-0.15, 0.15, T), rng.uniform(0.3, 1.2, T)], 1)
    u = _project(X + t_true[:, None], K)
    t, rms = solve_translation(X, u, K)
    np.testing.assert_allclose(t, t_true, atol=1e-6)
    assert rms.max() < 1e-4


def test_pnp_robust_to_one_outlier_and_noise():
    rng = np.random.default_rng(2)
    K = intrinsics_matrix(640, 480, fov_deg=60)
    T = 40
    X = np.stack([_hand(rng) for _ in range(T)])
    t_true = np.tile([0.05, -0.02, 0.6], (T, 1))
    u = _project(X + t_true[:, None], K) + rng.normal(scale=1.0, size=(T, 21, 2))
    u[:, 7] += 80.0  # one keypoint far off in every frame
    t, _ = solve_translation(X, u, K)
    err = np.linalg.norm(t - t_true, axis=1)
    assert np.median(err) < 0.01  # 1 cm at 60 cm depth, with a gross outlier


def test_place_hand_keeps_relative_position_and_absent_frames():
    rng = np.random.default_rng(3)
    K = intrinsics_matrix(640, 480, focal_mm=30)
    T = 10
    X = np.stack([_hand(rng) for _ in range(T)])
    t_true = np.tile([-0.1, 0.0, 0.5], (T, 1))
    u = _project(X + t_true[:, None], K)
    present = np.ones(T, bool)
    present[[2, 5]] = False
    pl = place_hand(X, u, present, K)
    np.testing.assert_allclose(pl.root[present], (X + t_true[:, None])[present, 0], atol=1e-6)
    assert np.all(pl.keypoints3d[~present] == 0) and np.all(pl.reproj_error[~present] == 0)
