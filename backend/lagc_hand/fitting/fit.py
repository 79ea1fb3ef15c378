"""Fit the hand model to placed 3D keypoints: all frames of one hand in one batch.

Unknowns (``T`` frames of one hand): 16 joint rotations per frame in the 6D
parameterisation (joint 0 = global orientation), a translation per frame and
one shape ``betas`` for the whole sequence.  Loss:

* keypoints: squared distance to the target keypoints (cm^2, per-keypoint weights);
* joint limits: squared excess beyond the anatomical boxes of :mod:`.limits`
  (flexion / abduction / twist), so twist goes to the wrist and not into
  impossible finger rolls;
* shape prior: ``|betas|^2``;
* temporal (optional): squared change of the 6D parameters between
  consecutive frames.

Initialisation: global orientation by Kabsch on the five palm points
(wrist + four finger MCPs), fingers flat, translation on the wrist.  Then Adam
over all frames at once.  Works for any :class:`~lagc_hand.handmodel.layer.HandModel`
(open model or MANO).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from lagc_hand.fitting.adam import Adam, cosine_scale
from lagc_hand.fitting.limits import _CHILD, anatomical_frames, joint_limit_boxes
from lagc_hand.handmodel.torch_rotations import matrix_to_rot6d, rot6d_to_matrix
from lagc_hand_blender.core.rotations import matrix_to_quat, quat_sign_continuity
from lagc_hand_blender.core.skeleton import MANO_PARENTS, NUM_JOINTS, PUBLIC_TO_MANO21

#: Public indices of the palm points used to initialise the global orientation.
PALM_POINTS = np.array([0, 5, 9, 13, 17])


@dataclass
class FitConfig:
    """Fitting options.  Weights are relative to the keypoint term (cm^2)."""

    iterations: int = 40
    lr: float = 0.02
    w_limits: float = 30.0
    w_betas: float = 0.05
    w_temporal: float = 0.0
    fit_shape: bool = True
    device: str = "cpu"
    #: CPU threads for torch during the fit.  The tensors are tiny (3x3 blocks),
    #: so extra threads only add synchronisation; on a busy 2-core machine the
    #: default (all cores) was 14x slower than 1 thread (18.4 s vs 1.3 s for 60 frames).
    cpu_threads: int = 1


@dataclass
class HandFit:
    """A fitted hand sequence (``T`` frames, ``B`` shape coefficients).

    rotmats:     (T, 16, 3, 3) float32, MANO semantics (joint 0 global, rest frame -> camera).
    quats:       (T, 16, 4) float32 w-x-y-z, sign-continuous over time.
    root:        (T, 3) float32, wrist joint in the camera frame, metres.
    keypoints3d: (T, 21, 3) float32, posed model keypoints, camera frame, public order.
    betas:       (B,) float32.
    error:       (T,) float32, mean keypoint distance to the target, metres.
    """

    rotmats: np.ndarray
    quats: np.ndarray
    root: np.ndarray
    keypoints3d: np.ndarray
    betas: np.ndarray
    error: np.ndarray


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Batched rotation R minimising |R src_c - dst_c|.  src (N,3), dst (T,N,3) -> (T,3,3)."""
    s = src - src.mean(0)
    d = dst - dst.mean(1, keepdims=True)
    H = np.einsum("ni,tnj->tij", s, d)
    U, _, Vt = np.linalg.svd(H)
    det = np.sign(np.linalg.det(np.einsum("tji,tkj->tik", Vt, U)))
    D = np.tile(np.eye(3), (len(dst), 1, 1))
    D[:, 2, 2] = det
    return np.einsum("tji,tjk,tlk->til", Vt, D, U)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched minimal rotation (no twist) taking direction a (T,3) onto b (T,3) -> (T,3,3)."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    v = np.cross(a, b)
    c = np.sum(a * b, -1)
    k = np.zeros(v.shape + (3,))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    # Rodrigues with (1 - c) / s^2 = 1 / (1 + c); opposite vectors (c ~ -1) are left unrotated.
    f = np.where(c > -0.999, 1.0 / np.maximum(1.0 + c, 1e-3), 0.0)
    return np.eye(3) + k + (k @ k) * f[:, None, None]


def initial_pose(rest_kp: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Analytic start: global orientation by Kabsch on the palm, then each finger
    joint (parents first) swung so its bone points at the target's bone.

    rest_kp: (21, 3) rest keypoints, public order.  target: (T, 21, 3).
    Returns (T, 16, 3, 3) parent-relative rotations (MANO order).
    """
    T = len(target)
    rest21 = rest_kp[PUBLIC_TO_MANO21]
    tgt21 = target[:, PUBLIC_TO_MANO21]
    rot = np.tile(np.eye(3), (T, NUM_JOINTS, 1, 1))
    glob = np.tile(np.eye(3), (T, NUM_JOINTS, 1, 1))
    rot[:, 0] = glob[:, 0] = _kabsch(rest_kp[PALM_POINTS], target[:, PALM_POINTS])
    for j in range(1, NUM_JOINTS):  # MANO order lists every parent before its children
        p = MANO_PARENTS[j]
        c = _CHILD[j]
        b_rest = rest21[c] - rest21[j]
        b_loc = np.einsum("tji,tj->ti", glob[:, p], tgt21[:, c] - tgt21[:, j])
        rot[:, j] = _swing(np.broadcast_to(b_rest, b_loc.shape), b_loc)
        glob[:, j] = glob[:, p] @ rot[:, j]
    return rot


def _linear_betas(model, rot: np.ndarray, target: np.ndarray, weights, w_prior: float) -> np.ndarray:
    """Betas (nb,) minimising the keypoint error for fixed rotations ``rot`` (T,16,3,3),
    root-relative (the wrist is pinned to the target's), with a ridge prior."""
    dtype, dev = model.v_template.dtype, model.v_template.device
    nb = model.num_betas
    R = torch.as_tensor(rot, dtype=dtype, device=dev)
    basis = np.concatenate([np.zeros((1, nb)), np.eye(nb)])
    cols = []
    with torch.no_grad():
        for b in basis:
            out = model.forward_rotmat(R, torch.as_tensor(b[None], dtype=dtype, device=dev), return_vertices=False)
            kp = out.keypoints.cpu().numpy().astype(np.float64)
            cols.append(kp - kp[:, :1])
    base = cols[0]
    A = np.stack([c - base for c in cols[1:]], -1).reshape(-1, nb)  # (T*21*3, nb)
    y = (target - target[:, :1] - base).reshape(-1)
    w = np.ones(target.shape[:2]) if weights is None else np.asarray(weights, np.float64)
    w = np.repeat(w.reshape(-1), 3)
    lam = w_prior * len(target) * 1e-4  # the keypoint term is in cm^2 in the loss
    AtA = A.T @ (A * w[:, None]) + lam * np.eye(nb)
    return np.linalg.solve(AtA, A.T @ (w * y))


def _rotvec(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) rotation vectors; smooth gradients near identity."""
    v = 0.5 * torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    c = 0.5 * (R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0)
    s = torch.sqrt((v * v).sum(-1) + 1e-12)
    angle = torch.atan2(s, c)
    return v * (angle / s)[..., None]


def fit_hand(model, target: np.ndarray, weights: Optional[np.ndarray] = None,
             config: FitConfig | None = None, betas_init: Optional[np.ndarray] = None) -> HandFit:
    """Fit ``model`` (a HandModel) to ``target`` keypoints.

    target:  (T, 21, 3) metres, camera frame, public order (T >= 1, all frames used).
    weights: (T, 21) >= 0 per-keypoint confidence, or None.
    """
    cfg = config or FitConfig()
    old = torch.get_num_threads()
    if cfg.device == "cpu" and cfg.cpu_threads:
        torch.set_num_threads(int(cfg.cpu_threads))
    try:
        return _fit_hand(model, target, weights, cfg, betas_init)
    finally:
        torch.set_num_threads(old)


def _fit_hand(
    model,
    target: np.ndarray,
    weights: Optional[np.ndarray] = None,
    config: FitConfig | None = None,
    betas_init: Optional[np.ndarray] = None,
) -> HandFit:
    """Fit ``model`` (a HandModel) to ``target`` keypoints.

    target:  (T, 21, 3) metres, camera frame, public order (T >= 1, all frames used).
    weights: (T, 21) >= 0 per-keypoint confidence, or None.
    """
    cfg = config or FitConfig()
    target = np.asarray(target, np.float64)
    T = target.shape[0]
    dev = torch.device(cfg.device)
    model = model.to(dev)
    dtype = model.v_template.dtype
    nb = model.num_betas

    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=dev)  # noqa: E731
    eye = torch.eye(3, dtype=dtype, device=dev).expand(1, NUM_JOINTS, 3, 3)

    def rest_of(b: np.ndarray):
        with torch.no_grad():
            out = model.forward_rotmat(eye, t(b[None]), return_vertices=False)
        return out.keypoints[0].cpu().numpy().astype(np.float64), out.joints[0, 0].cpu().numpy().astype(np.float64)

    b0 = np.zeros(nb) if betas_init is None else np.asarray(betas_init, np.float64)
    rest_kp, rest_j0 = rest_of(b0)
    init = initial_pose(rest_kp, target)
    if cfg.fit_shape:
        # With the rotations fixed, keypoints are affine in (betas, transl): solve
        # that linear least-squares problem, then redo the swing start with the shape.
        b0 = _linear_betas(model, init, target, weights, cfg.w_betas)
        rest_kp, rest_j0 = rest_of(b0)
        init = initial_pose(rest_kp, target)
    d6 = t(matrix_to_rot6d(torch.as_tensor(init)).numpy()).requires_grad_(True)
    transl = t(target[:, 0] - rest_j0).requires_grad_(True)
    betas = t(b0).requires_grad_(cfg.fit_shape)

    tgt = t(target)
    w = t(np.ones((T, 21)) if weights is None else weights)
    frames = t(anatomical_frames(rest_kp[PUBLIC_TO_MANO21], model.side))  # (15, 3, 3)
    lo_np, hi_np = joint_limit_boxes()
    lo, hi = t(lo_np), t(hi_np)

    # The translation is in metres while 6D entries are O(1): smaller steps for it.
    opt = Adam([([d6] + ([betas] if cfg.fit_shape else []), cfg.lr), ([transl], cfg.lr * 0.02)])

    def losses():
        R = rot6d_to_matrix(d6)
        out = model.forward_rotmat(R, betas, transl, return_vertices=False)
        diff = (out.keypoints - tgt) * 100.0  # cm
        l_kp = ((diff * diff).sum(-1) * w).sum() / max(T, 1)
        ang = torch.einsum("jab,tjb->tja", frames, _rotvec(R[:, 1:]))
        excess = torch.relu(lo - ang) + torch.relu(ang - hi)
        l_lim = (excess * excess).sum() / max(T, 1)
        loss = l_kp + cfg.w_limits * l_lim + cfg.w_betas * (betas * betas).sum()
        if cfg.w_temporal > 0 and T > 1:
            loss = loss + cfg.w_temporal * ((d6[1:] - d6[:-1]) ** 2).sum() / T
        return loss, out

    for i in range(cfg.iterations):
        opt.zero_grad()
        loss, _ = losses()
        loss.backward()
        # cosine annealing down to 5 % of the initial rate
        opt.step(cosine_scale(i, cfg.iterations, 0.05))

    with torch.no_grad():
        R = rot6d_to_matrix(d6)
        out = model.forward_rotmat(R, betas, transl, return_vertices=False)
        kp = out.keypoints.cpu().numpy()
        err = np.linalg.norm(kp - target, axis=-1).mean(-1)
        rot = R.cpu().numpy()
        root = out.joints[:, 0].cpu().numpy()
    quats = quat_sign_continuity(matrix_to_quat(rot), axis=0)
    return HandFit(
        rotmats=rot.astype(np.float32),
        quats=quats.astype(np.float32),
        root=root.astype(np.float32),
        keypoints3d=kp.astype(np.float32),
        betas=betas.detach().cpu().numpy().astype(np.float32),
        error=err.astype(np.float32),
    )


def pose_keypoints(model, quats: np.ndarray, root: np.ndarray, betas: np.ndarray,
                   present: Optional[np.ndarray] = None, device: str = "cpu") -> np.ndarray:
    """Posed keypoints from a HandMotion-style pose.

    quats: (T, 16, 4) w-x-y-z; root: (T, 3) wrist in the camera frame; betas: (B,).
    Returns (T, 21, 3) float32 camera-frame keypoints, public order (zeros where
    ``present`` is False).
    """
    from lagc_hand_blender.core.rotations import quat_to_matrix

    T = len(quats)
    out = np.zeros((T, 21, 3), np.float32)
    idx = np.arange(T) if present is None else np.flatnonzero(present)
    if idx.size == 0:
        return out
    dtype = model.v_template.dtype
    dev = model.v_template.device
    with torch.no_grad():
        R = torch.as_tensor(quat_to_matrix(np.asarray(quats)[idx]), dtype=dtype, device=dev)
        b = torch.as_tensor(np.asarray(betas)[None], dtype=dtype, device=dev)
        rest_j0 = model.rest_joints(b)[0, 0]
        transl = torch.as_tensor(np.asarray(root)[idx], dtype=dtype, device=dev) - rest_j0
        kp = model.forward_rotmat(R, b, transl, return_vertices=False).keypoints
    out[idx] = kp.cpu().numpy()
    return out
