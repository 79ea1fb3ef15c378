"""Batched Levenberg-Marquardt over every frame's pose, with analytic Jacobians.

Per frame the unknowns are a translation ``t`` and one rotation increment per
joint; betas are fixed here (see :mod:`.shape`).  The cost of a frame is

    sum_k w_k |kp_k - target_k|^2  (cm^2)  +  w_limits * sum |excess|^2  (rad^2)

with ``excess`` the part of each joint's anatomical (flexion, abduction, twist)
angles outside its box (:mod:`.limits`).  Residuals are always evaluated with
the real :meth:`HandModel.forward_rotmat`, so the optimum is the real one; the
Jacobians are analytic (no autograd).

Parameterisation.  The step solves for world-frame rotation vectors ``w_j``
(radians) at every joint: rotating everything below joint ``j`` by ``w_j``
about the posed joint ``P_j`` moves a point ``p`` by ``w_j x (p - P_j)``, so
``dp/dw_j = -[p - P_j]x``.  The local increment applied on the right,
``R_j <- R_j exp([d_j]x)``, is ``d_j = G_j^T w_j`` with ``G_j`` the joint's
global rotation.  Fingertips are skinned vertices: their Jacobian is the
skinning-weight sum of the same form over the bones below ``j``
(pose correctives ignored, as they are second order).

Structure.  A finger's keypoints move only with the wrist (``t``, ``w_0``) and
that finger's 3 joints, so the normal equations of a frame are an arrow: a
6x6 global block, five 9x9 finger blocks and their couplings.  The finger
blocks are eliminated (Schur complement), which costs five 9x9 and one 6x6
Cholesky per frame instead of one 51x51.  Skinning weights of a tip on bones
of *another* finger (none in the open model; tiny if any in MANO) are left out
of the Jacobian; the residual still contains them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lagc_hand.fitting.so3 import inv_right_jacobian, rotvec
from lagc_hand.handmodel.torch_rotations import axis_angle_to_matrix, skew
from lagc_hand_blender.core.skeleton import MANO_PARENTS, NUM_JOINTS, PUBLIC_TO_MANO21, TIP_PARENTS

#: MANO joints of each finger, base to distal, in MANO order (index, middle, pinky, ring, thumb).
FINGER_JOINTS = np.arange(1, NUM_JOINTS).reshape(5, 3)
#: MANO-21 index of each finger's tip (16 + position in TIP_PARENTS).
FINGER_TIPS = np.array([16 + int(np.flatnonzero(TIP_PARENTS == c)[0]) for c in FINGER_JOINTS[:, 2]])
#: Joints whose rotation moves a finger: the wrist, then the finger's three.  (5, 4)
FINGER_CHAIN = np.concatenate([np.zeros((5, 1), np.int64), FINGER_JOINTS], 1)
#: A finger's keypoints (its 3 joints + tip) as public indices.  (5, 4)
FINGER_KP_PUBLIC = PUBLIC_TO_MANO21[np.concatenate([FINGER_JOINTS, FINGER_TIPS[:, None]], 1)]
#: Keypoint i of a finger (0..2 joints, 3 tip) moves with chain joint m iff m <= i.
_CHAIN_MASK = np.tril(np.ones((4, 4)))


def _descendants(parents: np.ndarray) -> np.ndarray:
    """(16, 16) bool, ``[j, k]`` true when joint ``j`` is ``k`` or one of its ancestors."""
    n = len(parents)
    out = np.eye(n, dtype=bool)
    for k in range(n):
        p = parents[k]
        while p >= 0:
            out[p, k] = True
            p = parents[p]
    return out


@dataclass
class PoseState:
    """One evaluation of the model at a pose (``T`` frames).

    R (T,16,3,3) parent-relative rotations; transl (T,3) metres;
    joints (T,16,3) posed joints, cm; keypoints (T,21,3) cm, public order;
    glob (T,16,3,3) global rotations; res (T,21,3) weighted keypoint residuals (cm);
    ang (T,15,3) anatomical angles (rad); cost (T,).
    """

    R: torch.Tensor
    transl: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor
    glob: torch.Tensor
    res: torch.Tensor
    phi: torch.Tensor
    ang: torch.Tensor
    cost: torch.Tensor

    def where(self, take: torch.Tensor, other: "PoseState") -> "PoseState":
        """Per frame: ``other`` where ``take`` (T,) bool, else self."""
        def pick(a, b):
            return torch.where(take.view((-1,) + (1,) * (a.ndim - 1)), b, a)

        return PoseState(*(pick(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__))


class PoseProblem:
    """Keypoint + joint-limit least squares for one hand model, fixed betas.

    target: (T, 21, 3) metres, public order.  weights: (T, 21) >= 0.
    frames: (15, 3, 3) anatomical frames (rows: flexion, abduction, twist axes).
    lo, hi: (15, 3) radians.  All tensors on the model's device and dtype.
    """

    def __init__(self, model, betas: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                 frames: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, w_limits: float) -> None:
        if not np.array_equal(np.asarray(model.parents), MANO_PARENTS):
            raise ValueError("the Gauss-Newton fit assumes MANO's kinematic tree")
        self.model = model
        dtype, dev = target.dtype, target.device
        self.betas = betas.reshape(1, -1)
        self.target = target * 100.0  # cm
        self.sw = weights.clamp_min(0).sqrt()  # (T, 21)
        self.frames, self.lo, self.hi = frames, lo, hi
        self.w_limits = float(w_limits)
        self.sqrt_wl = float(np.sqrt(max(self.w_limits, 0.0)))
        as_long = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=dev)  # noqa: E731
        self.kp_idx = as_long(FINGER_KP_PUBLIC.reshape(-1))
        self.chain_idx = as_long(FINGER_CHAIN.reshape(-1))
        self.mask = torch.as_tensor(_CHAIN_MASK[:3], dtype=dtype, device=dev)[:, :, None]  # (3, 4, 1)

        # Fingertip skinning: the (tip, bone, weight) pairs with a weight, and for
        # finger f, chain joint m the weight each pair gets in d tip / d w_m.
        with torch.no_grad():
            rest_j = model.rest_joints(self.betas)[0]
            tips_rest = model.shaped_vertices(self.betas)[0, model.tip_vertex_ids]
        W = model.weights[model.tip_vertex_ids].detach().cpu().numpy().astype(np.float64)  # (5, 16)
        tip_i, bone_k = np.nonzero(W > 0)
        below = _descendants(MANO_PARENTS)
        C = np.zeros((5, 4, len(tip_i)))
        for f in range(5):
            for m in range(4):
                j = FINGER_CHAIN[f, m]
                sel = (tip_i == FINGER_TIPS[f] - 16) & below[j, bone_k]
                C[f, m, sel] = W[tip_i[sel], bone_k[sel]]
        self.pair_bones = as_long(bone_k)
        self.pair_rel = (tips_rest[as_long(tip_i)] - rest_j[self.pair_bones]) * 100.0  # (npairs, 3) cm
        self.tip_coef = torch.as_tensor(C, dtype=dtype, device=dev)
        self.tip_wsum = self.tip_coef.sum(-1)[..., None]  # (5, 4, 1)

    # --- residuals ----------------------------------------------------------------

    def evaluate(self, R: torch.Tensor, transl: torch.Tensor) -> PoseState:
        """Exact cost of every frame at rotations R (T,16,3,3) and transl (T,3) metres."""
        out = self.model.forward_rotmat(R, self.betas, transl, return_vertices=False)
        kp = out.keypoints * 100.0
        res = (kp - self.target) * self.sw[..., None]
        phi = rotvec(R[:, 1:])
        ang = torch.einsum("jab,tjb->tja", self.frames, phi)
        excess = (self.lo - ang).clamp_min(0) + (ang - self.hi).clamp_min(0)
        cost = (res * res).sum((1, 2)) + self.w_limits * (excess * excess).sum((1, 2))
        return PoseState(R, transl, out.joints * 100.0, kp, out.global_rotmats, res, phi, ang, cost)

    # --- Jacobians ------------------------------------------------------------------

    def lever_arms(self, s: PoseState) -> torch.Tensor:
        """(T, 5, 4, 4, 3) cm: for finger f, keypoint i (3 joints, tip) and chain
        joint m (wrist, the finger's 3 joints), the vector ``c`` with
        ``d kp_i / d w_m = -[c]x``; zero where joint m does not move keypoint i."""
        T = s.R.shape[0]
        P = s.joints
        chain = P[:, self.chain_idx].view(T, 5, 4, 3)
        kpf = s.keypoints[:, self.kp_idx].view(T, 5, 4, 3)
        # joints: lever arm p - P_m to every chain joint above them
        u_joint = (kpf[:, :, :3, None] - chain[:, :, None]) * self.mask  # (T, 5, 3, 4, 3)
        # tips: sum over the bones below m of weight * (bone's copy of the tip - P_m)
        q = (s.glob[:, self.pair_bones] @ self.pair_rel[..., None])[..., 0] + P[:, self.pair_bones]
        u_tip = torch.einsum("fmp,tpx->tfmx", self.tip_coef, q) - self.tip_wsum * chain  # (T, 5, 4, 3)
        return torch.cat([u_joint, u_tip[:, :, None]], 2)

    def finger_jacobian(self, s: PoseState) -> torch.Tensor:
        """Keypoint Jacobian per finger, (T, 5, 12, 15): rows = the finger's 4
        keypoints x (x, y, z), weighted cm; columns = translation (cm), then world
        rotation vectors (rad) of the wrist and the finger's 3 joints.  The solver
        never forms it (see :meth:`normal_equations`); tests check it."""
        T = s.R.shape[0]
        u = self.lever_arms(s)
        sw = self.sw[:, self.kp_idx].view(T, 5, 4, 1, 1, 1)
        j_rot = (-sw * skew(u)).permute(0, 1, 2, 4, 3, 5).reshape(T, 5, 12, 12)
        eye = torch.eye(3, dtype=u.dtype, device=u.device)
        j_t = (sw[..., 0] * eye).reshape(T, 5, 12, 3)
        return torch.cat([j_t, j_rot], -1)

    def limit_jacobian(self, s: PoseState) -> torch.Tensor:
        """d ang_j / d w_j for joints 1..15, (T, 15, 3, 3): F_j Jr^-1(phi_j) G_j^T."""
        return self.frames @ inv_right_jacobian(s.phi) @ s.glob[:, 1:].transpose(-1, -2)

    def normal_equations(self, s: PoseState):
        """Blocks of J^T J and J^T r (keypoints + limits) of every frame.

        Unknowns: global ``[t (cm), w_0]`` (6), finger f ``[w_a, w_b, w_c]`` (9).
        Returns A (T,5,9,9) finger blocks, B (T,5,9,6) finger-global coupling,
        Hg (T,6,6) global block, gf (T,5,9), gg (T,6).

        Built from one Gram matrix per finger instead of J^T J: with
        ``V_im = s_i c_im`` (weighted lever arms), the rotation block is
        ``sum_i [V_im]x^T [V_in]x = sum_i (V_im.V_in) I - V_in V_im^T``, the
        translation coupling ``-[sum_i s_i V_im]x`` and the gradient
        ``sum_i V_im x r_i``; all are entries of ``E^T E`` with the rows
        ``E_i = [V_i0, V_i1, V_i2, V_i3, s_i, r_i]`` (16 columns, 4 rows).
        """
        T = s.R.shape[0]
        N = T * 5
        sw = self.sw[:, self.kp_idx].view(T, 5, 4, 1)
        E = torch.cat([(self.lever_arms(s) * sw[..., None]).reshape(T, 5, 4, 12), sw,
                       s.res[:, self.kp_idx].view(T, 5, 4, 3)], -1).view(N, 4, 16)
        gram = E.transpose(1, 2) @ E  # (N, 16, 16)
        K = gram[:, :12, :12].view(N, 4, 3, 4, 3)  # [m, y, n, z] = sum_i V_im[y] V_in[z]
        D = torch.diagonal(K, dim1=2, dim2=4).sum(-1)  # (N, 4, 4) = sum_i V_im . V_in
        # rotation block (m, n) = D_mn I - (block (m, n) of K)^T: transposed copy, then the diagonal
        A = K[:, 1:, :, 1:, :].transpose(2, 4).reshape(T, 5, 9, 9).neg_()
        torch.diagonal(A.view(T, 5, 3, 3, 3, 3), dim1=3, dim2=5).add_(D[:, 1:, 1:].reshape(T, 5, 3, 3, 1))
        Bw = K[:, 1:, :, 0, :].transpose(2, 3).neg()  # (N, 3, 3, 3): block (m, 0)
        torch.diagonal(Bw, dim1=2, dim2=3).add_(D[:, 1:, 0, None])
        H00 = K[:, 0, :, 0, :].transpose(1, 2).neg()  # (N, 3, 3)
        torch.diagonal(H00, dim1=1, dim2=2).add_(D[:, 0, 0, None])
        a = gram[:, :12, 12].reshape(N, 4, 3)  # sum_i s_i V_im
        Gr = gram[:, :12, 13:].reshape(N, 4, 3, 3)  # [m, y, z] = sum_i V_im[y] r_i[z]
        gw = torch.stack([Gr[..., 1, 2] - Gr[..., 2, 1], Gr[..., 2, 0] - Gr[..., 0, 2],
                          Gr[..., 0, 1] - Gr[..., 1, 0]], -1)  # (N, 4, 3)
        B = torch.cat([skew(a[:, 1:]), Bw], -1).reshape(T, 5, 9, 6)
        gf = gw[:, 1:].reshape(T, 5, 9)
        eye = torch.eye(3, dtype=E.dtype, device=E.device)

        # global block: summed over fingers, plus the wrist keypoint (translation only)
        a0 = a[:, 0].view(T, 5, 3).sum(1)
        sw0 = self.sw[:, 0]
        ss = gram[:, 12, 12].view(T, 5).sum(1) + sw0 * sw0
        Hg = torch.empty(T, 6, 6, dtype=E.dtype, device=E.device)
        Hg[:, :3, :3] = ss[:, None, None] * eye
        Hg[:, 3:, :3] = skew(a0)
        Hg[:, :3, 3:] = -Hg[:, 3:, :3]
        Hg[:, 3:, 3:] = H00.view(T, 5, 3, 3).sum(1)
        gg = torch.cat([gram[:, 12, 13:].view(T, 5, 3).sum(1) + sw0[:, None] * s.res[:, 0],
                        gw[:, 0].view(T, 5, 3).sum(1)], -1)

        # joint limits: each finger joint's own 3x3 diagonal block
        L = self.limit_jacobian(s)
        below = (self.lo - s.ang).clamp_min(0)
        above = (s.ang - self.hi).clamp_min(0)
        La = L * ((below > 0) | (above > 0)).to(L.dtype)[..., None]
        Hl = self.w_limits * (La.transpose(-1, -2) @ La).view(T, 5, 3, 3, 3)
        torch.diagonal(A.view(T, 5, 3, 3, 3, 3), dim1=2, dim2=4).add_(Hl.permute(0, 1, 3, 4, 2))
        gl = self.w_limits * (L.transpose(-1, -2) @ (above - below)[..., None])[..., 0]
        gf = gf + gl.reshape(T, 5, 9)
        return A, B, Hg, gf, gg

    # --- one damped Gauss-Newton step -----------------------------------------------

    def step(self, s: PoseState, lam: torch.Tensor, mu: float = 10.0):
        """Solve (H + lam (diag H + mu)) x = -g for every frame (Schur complement
        on the finger blocks).  ``mu`` (cm^2 / rad^2 and cm^2 / cm^2) keeps the
        damping alive in directions the keypoints barely see (twist about a bone).

        Returns (new R (T,16,3,3), new transl (T,3) metres, ok (T,) bool: the
        damped system was positive definite)."""
        T = s.R.shape[0]
        A, B, Hg, gf, gg = self.normal_equations(s)
        lam = lam.to(A.dtype)
        dA = torch.diagonal(A, dim1=-2, dim2=-1)
        dA.mul_(1.0 + lam[:, None, None]).add_(lam[:, None, None] * mu)
        dG = torch.diagonal(Hg, dim1=-2, dim2=-1)
        dG.mul_(1.0 + lam[:, None]).add_(lam[:, None] * mu)

        LA, info_a = torch.linalg.cholesky_ex(A)
        X = torch.cholesky_solve(torch.cat([B, gf[..., None]], -1), LA).reshape(T, 45, 7)  # A^-1 [B | g_f]
        Bt = B.reshape(T, 45, 6).transpose(1, 2)
        BX = Bt @ X  # (T, 6, 7)
        S = Hg - BX[..., :6]
        LS, info_s = torch.linalg.cholesky_ex(S)
        dg = torch.cholesky_solve((BX[..., 6] - gg)[..., None], LS)  # (T, 6, 1)
        df = -(X @ torch.cat([dg, torch.ones_like(dg[:, :1])], 1))[..., 0]  # (T, 45)
        dg = dg[..., 0]
        ok = (info_a == 0).all(1) & (info_s == 0) & torch.isfinite(dg).all(1) & torch.isfinite(df).all(1)

        w = torch.cat([dg[:, 3:], df], 1).view(T, 16, 3)  # world-axis rotation vectors
        w = torch.where(ok[:, None, None], w, torch.zeros_like(w))
        d = (s.glob.transpose(-1, -2) @ w[..., None])[..., 0]  # local increments
        R = s.R @ axis_angle_to_matrix(d)
        transl = s.transl + torch.where(ok[:, None], dg[:, :3], torch.zeros_like(dg[:, :3])) / 100.0
        return R, transl, ok


def levenberg_marquardt(problem: PoseProblem, R: torch.Tensor, transl: torch.Tensor, iterations: int,
                        lam0: float = 0.1, state: PoseState | None = None) -> PoseState:
    """Run ``iterations`` LM steps on all frames at once; each frame keeps its
    own damping (divided by 3 after a step that lowered its cost, multiplied by
    5 and the step undone otherwise).  Returns the final :class:`PoseState`."""
    s = state if state is not None else problem.evaluate(R, transl)
    lam = torch.full((R.shape[0],), lam0, dtype=torch.float64, device=R.device)
    for _ in range(iterations):
        R_new, t_new, ok = problem.step(s, lam)
        cand = problem.evaluate(R_new, t_new)
        better = ok & (cand.cost <= s.cost)
        s = s.where(better, cand)
        lam = torch.where(better, (lam / 3.0).clamp_min(1e-7), (lam * 5.0).clamp_max(1e7))
    return s
