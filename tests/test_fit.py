"""Fitting: recover known poses of a hand model from its own keypoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lagc_hand.fitting import FitConfig, anatomical_frames, fit_hand, joint_limit_boxes, pose_keypoints
from lagc_hand.handmodel.torch_rotations import axis_angle_to_matrix
from lagc_hand_blender.core.rotations import matrix_to_quat, quat_angle_between
from lagc_hand_blender.core.skeleton import PUBLIC_TO_MANO21


def _rest_mano21(model):
    with torch.no_grad():
        out = model.forward_rotmat(torch.eye(3).expand(1, 16, 3, 3), return_vertices=False)
    return out.keypoints[0].numpy()[PUBLIC_TO_MANO21]


def random_poses(model, T, rng, betas=None):
    """Anatomically valid random poses: (rotmats (T,16,3,3), keypoints (T,21,3) camera frame)."""
    frames = anatomical_frames(_rest_mano21(model), model.side)
    lo, hi = joint_limit_boxes()
    ang = np.zeros((T, 15, 3))
    ang[..., 0] = rng.uniform(0.0, 0.8, (T, 15)) * hi[:, 0]  # flexion
    ang[..., 1] = rng.uniform(-0.5, 0.5, (T, 15)) * hi[:, 1]  # abduction
    ang[:, 12:, 2] = rng.uniform(-0.4, 0.4, (T, 3)) * hi[12:, 2]  # thumb twist only
    local = np.einsum("jab,tja->tjb", frames, ang)  # rows of frames are the axes
    glob = rng.normal(size=(T, 3))
    glob *= rng.uniform(0.3, 2.5, (T, 1)) / np.linalg.norm(glob, axis=1, keepdims=True)
    aa = torch.as_tensor(np.concatenate([glob[:, None], local], 1), dtype=torch.float32)
    R = axis_angle_to_matrix(aa)
    transl = torch.as_tensor(rng.uniform([-0.2, -0.1, 0.4], [0.2, 0.1, 0.9], (T, 3)), dtype=torch.float32)
    b = None if betas is None else torch.as_tensor(betas, dtype=torch.float32)
    with torch.no_grad():
        kp = model.forward_rotmat(R, b, transl, return_vertices=False).keypoints.numpy()
    return R.numpy(), kp


def test_anatomical_frames_flex_towards_palm(skeleton_hand):
    for side in ("right", "left"):
        model = skeleton_hand(side)
        rest = _rest_mano21(model)
        frames = anatomical_frames(rest, side)
        # Flexing the index MCP by +60 deg must move the index tip to the palm side (-y).
        aa = torch.zeros(1, 16, 3)
        aa[0, 1] = torch.as_tensor(frames[0, 0] * np.deg2rad(60))
        with torch.no_grad():
            kp = model.forward_rotmat(axis_angle_to_matrix(aa), return_vertices=False).keypoints[0].numpy()
        assert kp[8, 1] < -0.02, side
        assert np.allclose(frames @ frames.transpose(0, 2, 1), np.eye(3), atol=1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
def test_fit_recovers_pose_and_shape(skeleton_hand, side):
    model = skeleton_hand(side)
    rng = np.random.default_rng(7 if side == "right" else 8)
    betas = np.zeros(10, np.float32)
    betas[0], betas[1] = 0.8, -0.6
    R_true, kp = random_poses(model, 64, rng, betas)
    fit = fit_hand(model, kp, config=FitConfig())
    err_mm = np.linalg.norm(fit.keypoints3d - kp, axis=-1).mean() * 1000
    assert err_mm < 1.0
    # Global orientation (incl. wrist twist) must come out right.
    q_true = matrix_to_quat(R_true)
    g_err = np.degrees(quat_angle_between(fit.quats[:, 0], q_true[:, 0]))
    assert np.median(g_err) < 1.5
    # Finger joints: close to the truth on average (tips alone leave DIP twist free;
    # the limits keep it near zero like the ground truth).
    l_err = np.degrees(quat_angle_between(fit.quats[:, 1:], q_true[:, 1:]))
    assert np.median(l_err) < 3.0
    assert abs(fit.betas[0] - 0.8) < 0.15 and abs(fit.betas[1] + 0.6) < 0.15
    assert np.linalg.norm(fit.quats, axis=-1) == pytest.approx(1.0, abs=1e-4)
    # pose_keypoints reproduces the fitted keypoints from quats + root.
    again = pose_keypoints(model, fit.quats, fit.root, fit.betas)
    np.testing.assert_allclose(again, fit.keypoints3d, atol=1e-4)


def test_limits_forbid_backward_bend(skeleton_hand):
    """Targets with a finger bent backwards 60 deg: the fit must not follow into it."""
    model = skeleton_hand("right")
    frames = anatomical_frames(_rest_mano21(model), "right")
    aa = torch.zeros(4, 16, 3)
    aa[:, 5] = torch.as_tensor(frames[4, 0] * np.deg2rad(-60))  # middle PIP hyper-extended
    with torch.no_grad():
        kp = model.forward_rotmat(axis_angle_to_matrix(aa), transl=torch.tensor([[0, 0, 0.5]] * 4),
                                  return_vertices=False).keypoints.numpy()
    fit = fit_hand(model, kp, config=FitConfig(iterations=150, fit_shape=False))
    R = torch.as_tensor(fit.rotmats)
    from lagc_hand.fitting.fit import _rotvec

    pip = np.einsum("ab,tb->ta", frames[4], _rotvec(R[:, 5]).numpy())
    assert np.all(np.degrees(pip[:, 0]) > -20)  # stays near the -8 deg limit, not -60


def test_bounded_shape_solve_holds_the_box_and_solves_the_rest():
    """The shape solve keeps |beta| <= BETA_LIMIT: a coordinate that would leave the box
    sits on its bound and the others are the optimum with it held there."""
    from lagc_hand.fitting.shape import BETA_LIMIT, _solve_bounded

    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    S = torch.as_tensor(A @ A.T + 6 * np.eye(6))
    b0 = torch.zeros(6, dtype=torch.float64)
    free_opt = torch.as_tensor([9.0, -1.0, 0.5, 2.0, -8.0, 0.0], dtype=torch.float64)
    db = _solve_bounded(S, S @ free_opt, b0)
    assert float(db.abs().max()) <= BETA_LIMIT + 1e-9
    held = db.abs() > BETA_LIMIT - 1e-9
    assert held[0] and held[4] and db[0] > 0 and db[4] < 0
    # the free coordinates satisfy their rows of the normal equations with the held ones fixed
    resid = (S @ db - S @ free_opt)[~held]
    assert float(resid.abs().max()) < 1e-9
    # inside the box nothing changes
    inside = torch.as_tensor([1.0, -2.0, 0.5, 2.5, -1.0, 0.0], dtype=torch.float64)
    assert torch.allclose(_solve_bounded(S, S @ inside, b0), inside)


def test_a_misdetected_still_gets_a_human_shape(realdev):
    """wilor test5: MediaPipe stretches one hand's thumb onto the other hand; the shape
    solve drove a palm direction to -6.2 standard deviations.  Every beta stays within
    the bound."""
    from lagc_hand.fitting.shape import BETA_LIMIT
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    motion = run_pipeline(realdev / "images" / "wilor" / "test5.jpeg", ReconstructOptions(device="cpu")).motion
    seen = [h for h in motion.hands.values() if h.present.any()]
    assert seen
    for h in seen:
        assert np.abs(h.betas).max() <= BETA_LIMIT + 1e-4, h.betas


def test_hidden_frames_are_placed_between_the_seen_ones():
    """place_hidden: a bridged run's roots are interpolated in time between the seen
    frames around it, its keypoints move with them; a run at the end and the seen
    frames keep their fit."""
    from lagc_hand.fitting import HandFit
    from lagc_hand.fitting.hidden import place_hidden

    T = 8
    root = np.zeros((T, 3), np.float32)
    root[:, 2] = [0.5, 0.6, 2.6, 2.3, 0.9, 0.8, 3.0, 3.0]
    kp = np.repeat(root[:, None], 21, 1) + np.linspace(0, 0.1, 21, dtype=np.float32)[None, :, None]
    fit = HandFit(np.zeros((T, 16, 3, 3), np.float32), np.zeros((T, 16, 4), np.float32), root, kp,
                  np.zeros(2, np.float32), np.zeros(T, np.float32))
    frames = np.array([0, 1, 3, 4, 6, 7, 8, 9])  # fitted frames (2 and 5 absent)
    hidden = np.array([False, False, True, True, False, False, True, True])
    out = place_hidden(fit, frames, hidden)
    np.testing.assert_allclose(out.root[2:4, 2], [0.6 + 0.3 * 2 / 5, 0.6 + 0.3 * 3 / 5], atol=1e-6)
    np.testing.assert_allclose(out.keypoints3d - out.root[:, None], kp - root[:, None], atol=1e-6)
    np.testing.assert_array_equal(out.root[[0, 1, 4, 5, 6, 7]], root[[0, 1, 4, 5, 6, 7]])
    assert place_hidden(fit, frames, np.zeros(T, bool)) is fit
