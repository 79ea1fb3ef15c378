"""Linear solve of the shape ``betas`` for fixed joint rotations.

With every joint rotation fixed, the model's keypoints are affine in betas
(rest joints and rest vertices are linear in betas; forward kinematics and
skinning are then linear in those).  So the best betas for fixed rotations,
with a free translation per frame, is one small linear least-squares problem.
"""
from __future__ import annotations

import numpy as np
import torch

from lagc_hand_blender.core.skeleton import PUBLIC_PARENTS, PUBLIC_TO_MANO21

#: Largest |beta|: every shape direction is scaled to ~one standard deviation of
#: adult hands, and a single blurred or mis-detected still pulled some to 6 (a thumb
#: stretched to the other hand, wilor test5): no hand is that far from the mean.
BETA_LIMIT = 3.0
#: Weight of the held size against the mean curvature of the shape problem (a
#: constraint in all but name: the size moves by ~1e-4 of its error per solve).
HOLD_WEIGHT = 1e4


def size_and_gradient(model, betas: np.ndarray) -> tuple[float, np.ndarray]:
    """The hand's size -- the summed length of the 20 bones of its rest skeleton,
    metres -- at ``betas`` (nb,), and its gradient (nb,) metres per unit beta."""
    dtype, dev = model.v_template.dtype, model.v_template.device
    b = torch.as_tensor(np.asarray(betas, np.float64)[None], dtype=dtype, device=dev)
    eye = torch.eye(3, dtype=dtype, device=dev).expand(1, len(model.parents), 3, 3)
    kp = model.forward_rotmat(eye, b, return_vertices=False).keypoints[0].double().cpu().numpy()
    J21 = shape_jacobian(model, eye)[0].double().cpu().numpy()  # (21, 3, nb) MANO-21 order
    J = np.empty_like(J21)
    J[PUBLIC_TO_MANO21] = J21  # public order
    par = np.asarray(PUBLIC_PARENTS[1:])
    bone = kp[1:] - kp[par]
    length = np.linalg.norm(bone, axis=1)
    u = bone / np.maximum(length, 1e-12)[:, None]
    grad = np.einsum("kx,kxn->n", u, J[1:] - J[par])
    return float(length.sum()), grad


def _hold(S: torch.Tensor, rhs: torch.Tensor, hold) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the held linear combination ``g . (b0 + db) = target`` to normal equations
    ``S db = rhs`` (float64), ``hold = (g (nb,), c)`` with ``c`` its value at b0 minus target."""
    if hold is None:
        return S, rhs
    g = torch.as_tensor(np.asarray(hold[0], np.float64), dtype=S.dtype, device=S.device)
    w = HOLD_WEIGHT * float(S.diagonal().mean()) / max(float(g @ g), 1e-18)
    return S + w * torch.outer(g, g), rhs - w * float(hold[1]) * g


def _solve_bounded(S: torch.Tensor, rhs: torch.Tensor, b0: torch.Tensor, limit: float = BETA_LIMIT) -> torch.Tensor:
    """``db`` of ``S db = rhs`` (nb, nb) / (nb,) float64 with ``|b0 + db| <= limit``:
    the coordinates that leave the box are held on it and the rest re-solved (an
    active set, a few rounds; the box is rarely touched, so usually one solve)."""
    db = torch.linalg.solve(S, rhs)
    held = torch.zeros_like(b0, dtype=torch.bool)
    for _ in range(4):
        out = (b0 + db).abs() > limit + 1e-9
        if not (out & ~held).any():
            break
        held |= out
        db = torch.where(held, torch.sign(b0 + db) * limit - b0, db)
        free = ~held
        if free.any():
            r = rhs[free] - S[free][:, held] @ db[held]
            db[free] = torch.linalg.solve(S[free][:, free], r)
    return db


def _rotate_each(G: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``G[:, k] @ M[k]`` for every k: G (T, K, 3, 3), M (K, 3, nb) -> (T, K, 3, nb).

    Done as K matrix products of (T*3, 3) x (3, nb): a few large GEMMs instead of
    T*K tiny ones (batched 3x3 products are slow on CPU)."""
    T, K = G.shape[:2]
    out = G.transpose(0, 1).reshape(K, T * 3, 3) @ M
    return out.view(K, T, 3, -1).transpose(0, 1)


def shape_jacobian(model, glob: torch.Tensor) -> torch.Tensor:
    """d keypoints / d betas at global rotations ``glob`` (T, 16, 3, 3).

    Returns (T, 21, 3, nb): metres per unit beta, MANO-21 order (16 joints,
    then the 5 tips).  Exact for the keypoints of :meth:`HandModel.forward_rotmat`
    (pose correctives do not depend on betas).
    """
    S = model.j_shapedirs  # (16, 3, nb)
    parents = np.asarray(model.parents)
    # joint j = parent + G_parent (J_j - J_parent): increments, then sums down the tree
    inc = _rotate_each(glob[:, parents[1:]], S[1:] - S[parents[1:]])  # (T, 15, 3, nb)
    dP = [S[0].expand(glob.shape[0], -1, -1)]
    for j in range(1, len(parents)):  # MANO order lists parents first
        dP.append(dP[parents[j]] + inc[:, j - 1])
    dP = torch.stack(dP, 1)  # (T, 16, 3, nb)
    # tips: sum_k w_k (G_k (sd_tip - S_k) + dP_k)
    W = model.weights[model.tip_vertex_ids]  # (5, 16)
    sd = model.shapedirs[model.tip_vertex_ids]  # (5, 3, nb)
    tip_i, bone_k = torch.nonzero(W > 0, as_tuple=True)
    w = W[tip_i, bone_k][None, :, None, None]
    contrib = w * (_rotate_each(glob[:, bone_k], sd[tip_i] - S[bone_k]) + dP[:, bone_k])  # (T, npairs, 3, nb)
    tips = dP.new_zeros(glob.shape[0], 5, *S.shape[1:]).index_add_(1, tip_i, contrib)
    return torch.cat([dP, tips], 1)


def solve_betas(model, glob: torch.Tensor, keypoints: torch.Tensor, betas: torch.Tensor, target: np.ndarray,
                weights: np.ndarray, w_prior: float, hold=None) -> tuple[np.ndarray, np.ndarray]:
    """Betas minimising the weighted keypoint error for fixed rotations.

    glob: (T, 16, 3, 3) global rotations; keypoints: (T, 21, 3) metres, public
    order, the model's keypoints at ``betas`` (nb,) with those rotations; target
    (T, 21, 3) metres; weights (T, 21).  The translation of every frame is free
    (eliminated by weighted centring).  The prior ``w_prior |betas|^2`` is
    relative to the per-frame cost in cm^2, as in :class:`FitConfig`.  ``hold``:
    None, or ``(g (nb,), c)`` -- keep ``g . betas`` where ``c`` (its value at
    ``betas`` minus the wanted one) says, e.g. the hand's size
    (:func:`size_and_gradient`).

    Returns (new betas (nb,), translation change per frame (T, 3) metres) that
    together minimise the cost.
    """
    dtype, dev = glob.dtype, glob.device
    Jb = shape_jacobian(model, glob)  # (T, 21, 3, nb), MANO-21 order
    nb = Jb.shape[-1]
    to21 = torch.as_tensor(PUBLIC_TO_MANO21, device=dev)
    w = torch.as_tensor(np.asarray(weights)[:, PUBLIC_TO_MANO21], dtype=dtype, device=dev).clamp_min(0)
    y = (torch.as_tensor(np.asarray(target), dtype=dtype, device=dev) - keypoints)[:, to21]
    W = w.sum(1).clamp_min(1e-12)  # (T,)
    Jw = Jb * w[..., None, None]
    J_mean = Jw.sum(1) / W[:, None, None]  # (T, 3, nb) weighted mean over keypoints
    y_mean = (w[..., None] * y).sum(1) / W[:, None]  # (T, 3)
    # Centred normal equations sum_t sum_k w (J_k - J_mean)^T (J_k - J_mean) written as
    # raw moments minus the per-frame mean terms (no centred copy of the (T, 21, 3, nb)
    # Jacobian; its entries are cm-sized, the mean a few times that, so float32 keeps
    # ~6 digits).  Float32 GEMMs over T*63 rows; the (nb, nb) solve in float64.
    Jw2, Jb2 = Jw.reshape(-1, nb), Jb.reshape(-1, nb)
    Jm2 = J_mean.reshape(-1, nb) * W.repeat_interleave(3)[:, None]
    AtA = (Jw2.T @ Jb2).double() - (Jm2.T @ J_mean.reshape(-1, nb)).double()
    # (y centred first: before the pose fit y still holds the whole translation)
    Aty = (Jw2.T @ (y - y_mean[:, None]).reshape(-1)).double()
    b0 = betas.double().reshape(-1)
    # per-frame cost in cm^2 = 1e4 x metres^2; summed over T frames
    lam = w_prior * len(y) * 1e-4
    # a tiny ridge so unused shape directions (zero columns) stay solvable without a prior
    lam = max(lam, 1e-9 * float(AtA.diagonal().mean()))
    eye = torch.eye(nb, dtype=torch.float64, device=dev)
    db = _solve_bounded(*_hold(AtA + lam * eye, Aty - lam * b0, hold), b0)
    dt = y_mean - J_mean @ db.to(dtype)
    return (b0 + db).cpu().numpy(), dt.cpu().numpy()


#: Longest translation change of one frame in one shape step, as a fraction of its depth.
MAX_SHAPE_STEP_DEPTH = 0.1


def solve_betas_image(model, state, betas: torch.Tensor, sw3: torch.Tensor, image_rows: torch.Tensor,
                      image_res: torch.Tensor, w_prior: float, hold=None) -> tuple[np.ndarray, torch.Tensor]:
    """One Gauss-Newton step on the shared shape and every frame's translation, the
    rotations fixed, for the fit with an image term (:mod:`.image_term`).

    The wrist-relative keypoint term alone would give the detector's 3D proportions
    (MediaPipe's world landmarks have a palm ~15 % longer relative to the fingers
    than the hand model or RHD's labels); with the image rows the shape is the one
    that lies on the 2D keypoints of all frames at once, and each frame's depth
    follows from it.

    state: the :class:`.lm.PoseState` (keypoints cm, glob (T, 16, 3, 3), res (T, 21, 3)
    weighted wrist-relative residuals, cm).  betas (nb,); sw3 (T, 21) square roots of the
    3D weights; image_rows (T, 21, 2, 3) / image_res (T, 21, 2) from :func:`.image_term.evaluate`.
    ``w_prior |betas|^2`` per frame and ``hold`` as in :func:`solve_betas`.
    Returns (new betas (nb,) float64, translation change (T, 3) metres).
    """
    dev = state.glob.device
    Jb = shape_jacobian(model, state.glob).double() * 100.0  # (T, 21, 3, nb) cm per beta, MANO-21 order
    to21 = torch.as_tensor(PUBLIC_TO_MANO21, device=dev)
    T, nb = Jb.shape[0], Jb.shape[-1]
    J3 = (Jb - Jb[:, :1]) * sw3.index_select(1, to21).double()[..., None, None]
    r3 = state.res.index_select(1, to21).double()
    a = image_rows.index_select(1, to21).double()  # (T, 21, 2, 3)
    r2 = image_res.index_select(1, to21).double()
    J2 = a @ Jb  # (T, 21, 2, nb)
    # (plain matrix products over the stacked rows: einsum was 4x slower here)
    J3m, J2m, r3v, r2v = J3.reshape(-1, nb), J2.reshape(-1, nb), r3.reshape(-1), r2.reshape(-1)
    Hbb = J3m.T @ J3m + J2m.T @ J2m
    gb = J3m.T @ r3v + J2m.T @ r2v
    J2t, at, r2t = J2.reshape(T, -1, nb), a.reshape(T, -1, 3), r2.reshape(T, -1, 1)
    Hbt = J2t.transpose(1, 2) @ at  # (T, nb, 3)
    Htt = at.transpose(1, 2) @ at + 1e-6 * torch.eye(3, dtype=torch.float64, device=dev)
    gt = (at.transpose(1, 2) @ r2t)[..., 0]
    Htt_inv = torch.linalg.inv(Htt)
    HbtHi = Hbt @ Htt_inv  # (T, nb, 3)
    lam = w_prior * T
    b0 = betas.double().reshape(-1)
    S = Hbb - HbtHi.transpose(0, 1).reshape(nb, -1) @ Hbt.transpose(0, 1).reshape(nb, -1).T
    S = S + lam * torch.eye(nb, dtype=torch.float64, device=dev)
    rhs = -(gb - HbtHi.transpose(0, 1).reshape(nb, -1) @ gt.reshape(-1)) - lam * b0
    db = _solve_bounded(*_hold(S, rhs, hold), b0)
    dt = -(Htt_inv @ (gt + Hbt.transpose(1, 2) @ db)[..., None])[..., 0]  # (T, 3) cm
    # A frame whose image rows are all but zero (its 2D down-weighted as outliers) leaves
    # its translation free in this linear step: on a real clip one moved 9 m.  A shape
    # change of a few per cent moves a hand by a few per cent of its depth; longer steps
    # are cut to that (the LM polish that follows does the rest).
    limit = MAX_SHAPE_STEP_DEPTH * state.keypoints[..., 2].double().mean(-1).abs().clamp_min(1.0)
    dt = dt * (limit / dt.norm(dim=-1).clamp_min(1e-12)).clamp(max=1.0)[:, None]
    return (b0 + db).cpu().numpy(), (dt / 100.0).to(state.glob.dtype)
