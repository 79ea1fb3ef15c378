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
6x6 global block, five 9x9 finger blocks and their couplings.  Each finger's
rows (its keypoints in 3D and in the image, 20 x 15) give its blocks as one
Gram product; the finger blocks are eliminated (Schur complement), which costs
five 9x9 and one 6x6 Cholesky per frame instead of one 51x51, all over whole
arrays of frames with the frame axes last (:mod:`.soa`).  Skinning weights of a tip on bones
of *another* finger (none in the open model; tiny if any in MANO) are left out
of the Jacobian; the residual still contains them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lagc_hand.fitting import image_term, soa
from lagc_hand.fitting.image_term import ImageTerm
from lagc_hand.fitting.so3 import inv_right_jacobian, rotvec
from lagc_hand.handmodel.torch_rotations import skew
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
    phi (T,15,3) rotation vectors of joints 1..15 (rad); ang (T,15,3) their
    anatomical (flexion, abduction, twist) angles (rad); cost (T,);
    img_res (T,21,2) / img_rows (T,21,2,3): the image term's weighted residuals
    and their derivatives (:func:`.image_term.evaluate`), None without one.
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
    img_res: torch.Tensor | None = None
    img_rows: torch.Tensor | None = None

    def where(self, take: torch.Tensor, other: "PoseState") -> "PoseState":
        """Per frame: ``other`` where ``take`` (T,) bool, else self."""
        def pick(a, b):
            if a is None:
                return None
            return torch.where(take.view((-1,) + (1,) * (a.ndim - 1)), b, a)

        return PoseState(*(pick(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__))


class PoseProblem:
    """Keypoint + joint-limit (+ image) least squares for one hand model, fixed betas.

    target: (T, 21, 3) metres, public order.  weights: (T, 21) >= 0.
    frames: (15, 3, 3) anatomical frames (rows: flexion, abduction, twist axes).
    lo, hi: (15, 3) radians.  All tensors on the model's device and dtype.
    image: the reprojection term (:class:`.image_term.ImageTerm`), or None.
    relative3d: the keypoint term compares wrist-relative positions
    ``(kp_k - kp_wrist) - (target_k - target_wrist)``, so it says nothing about
    the translation, which the image term then places (depth included).
    """

    def __init__(self, model, betas: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                 frames: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, w_limits: float,
                 image: ImageTerm | None = None, relative3d: bool = False) -> None:
        if not np.array_equal(np.asarray(model.parents), MANO_PARENTS):
            raise ValueError("the Levenberg-Marquardt fit assumes MANO's kinematic tree")
        self.model = model
        dtype, dev = target.dtype, target.device
        self.betas = betas.reshape(1, -1)
        self.target = target * 100.0  # cm
        self.sw = weights.clamp_min(0).sqrt()  # (T, 21)
        self.frames, self.lo, self.hi = frames, lo, hi
        self.w_limits = float(w_limits)
        self.image, self.relative3d = image, bool(relative3d)
        as_long = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=dev)  # noqa: E731
        self.kp_idx = as_long(FINGER_KP_PUBLIC.reshape(-1))
        self.chain_idx = as_long(FINGER_CHAIN.reshape(-1))
        self.mask4 = torch.as_tensor(_CHAIN_MASK, dtype=dtype, device=dev)[:, :, None]  # (4 i, 4 m, 1)

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
        self.tip_wsum_soa = self.tip_coef.sum(-1).T[:, None, None].contiguous()  # (4 m, 1, 1, 5 f)
        # limit constants laid out as [component, joint of the finger, 1, finger] (see _limit_terms)
        self._frames_soa = frames.reshape(5, 3, 3, 3).permute(2, 3, 1, 0)[:, :, :, None].contiguous()
        self._lo_soa = lo.reshape(5, 3, 3).permute(2, 1, 0)[:, :, None].contiguous()
        self._hi_soa = hi.reshape(5, 3, 3).permute(2, 1, 0)[:, :, None].contiguous()

    # --- residuals ----------------------------------------------------------------

    def evaluate(self, R: torch.Tensor, transl: torch.Tensor) -> PoseState:
        """Exact cost of every frame at rotations R (T,16,3,3) and transl (T,3) metres."""
        out = self.model.forward_rotmat(R, self.betas, transl, return_vertices=False)
        kp = out.keypoints * 100.0
        d = kp - self.target
        if self.relative3d:
            d = d - d[:, :1]
        res = d * self.sw[..., None]
        phi = rotvec(R[:, 1:])
        ang = torch.einsum("jab,tjb->tja", self.frames, phi)
        excess = (self.lo - ang).clamp_min(0) + (ang - self.hi).clamp_min(0)
        cost = (res * res).sum((1, 2)) + self.w_limits * (excess * excess).sum((1, 2))
        img_res = img_rows = None
        if self.image is not None:
            img_res, img_rows, img_cost = image_term.evaluate(self.image, kp)
            cost = cost + img_cost
        return PoseState(R, transl, out.joints * 100.0, kp, out.global_rotmats, res, phi, ang, cost,
                         img_res, img_rows)

    # --- Jacobians ------------------------------------------------------------------

    def _lever_soa(self, s: PoseState) -> torch.Tensor:
        """Lever arms laid out (4 i, 4 m, 3, T, 5), without the zero mask (see
        :meth:`lever_arms`; entries with m > i are not meaningful)."""
        T = s.R.shape[0]
        P = s.joints
        soa = lambda x: x.view(T, 5, 4, 3).permute(2, 3, 0, 1).contiguous()  # noqa: E731  (4, 3, T, 5)
        chain = soa(P.index_select(1, self.chain_idx))
        kpf = soa(s.keypoints.index_select(1, self.kp_idx))
        u = torch.empty(4, 4, 3, T, 5, dtype=P.dtype, device=P.device)
        # joints: lever arm p - P_m to every chain joint above them
        torch.sub(kpf[:3, None], chain[None], out=u[:3])
        # tips: sum over the bones below m of weight * (bone's copy of the tip - P_m)
        bones = self.pair_bones
        q = (s.glob.index_select(1, bones) @ self.pair_rel[..., None])[..., 0] + P.index_select(1, bones)
        u[3] = torch.einsum("fmp,tpx->mxtf", self.tip_coef, q) - self.tip_wsum_soa * chain
        return u

    def lever_arms(self, s: PoseState) -> torch.Tensor:
        """(T, 5, 4, 4, 3) cm: for finger f, keypoint i (3 joints, tip) and chain
        joint m (wrist, the finger's 3 joints), the vector ``c`` with
        ``d kp_i / d w_m = -[c]x``; zero where joint m does not move keypoint i."""
        return self._lever_soa(s).permute(3, 4, 0, 1, 2) * self.mask4

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

    def _limit_terms(self, s: PoseState):
        """Joint-limit parts of J^T J and J^T r per finger joint, world axes.

        Returns (H, g): ``H[l][m]`` and ``g[l]`` are (3, T, 5) tensors indexed
        [joint of the finger (base, middle, distal), frame, finger], so
        ``H[l][m][k]`` is entry (l, m) of joint k's 3x3 block.  Written out per
        matrix entry over whole arrays ("structure of arrays"): batched 3x3
        matrix products run at a fraction of the speed on CPU.
        """
        T = s.R.shape[0]
        soa = lambda x: x.reshape(T, 5, 3, *x.shape[2:]).permute(  # noqa: E731
            *range(3, x.ndim + 1), 2, 0, 1).contiguous()
        p = soa(s.phi)  # (3, 3k, T, 5)
        G = soa(s.glob[:, 1:])  # (3, 3, 3k, T, 5)
        ang = soa(s.ang)
        F = self._frames_soa  # (3, 3, 3k, 1, 5)
        t2 = p[0] * p[0] + p[1] * p[1] + p[2] * p[2]
        small = t2 < 1e-4
        th = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
        # Jr^-1(phi) = I + [phi]x / 2 + c [phi]x^2, with [phi]x^2 = phi phi^T - |phi|^2 I
        c = torch.where(small, 1.0 / 12.0 + t2 / 720.0, 1.0 / t2 - (1.0 + torch.cos(th)) / (2.0 * th * torch.sin(th)))
        diag = 1.0 - c * t2
        half = [0.5 * x for x in p]
        skew_half = [[None, -half[2], half[1]], [half[2], None, -half[0]], [-half[1], half[0], None]]
        cp = [c * x for x in p]
        Jinv = [[diag + cp[i] * p[i] if i == j else skew_half[i][j] + cp[i] * p[j] for j in range(3)] for i in range(3)]
        # L = F Jr^-1 G^T: d (flex, abd, twist) / d w
        M = [[F[k, 0] * Jinv[0][j] + F[k, 1] * Jinv[1][j] + F[k, 2] * Jinv[2][j] for j in range(3)] for k in range(3)]
        L = [[M[k][0] * G[l, 0] + M[k][1] * G[l, 1] + M[k][2] * G[l, 2] for l in range(3)] for k in range(3)]
        below = (self._lo_soa - ang).clamp_min(0)
        above = (ang - self._hi_soa).clamp_min(0)
        act = ((below > 0) | (above > 0)).to(ang.dtype) * self.w_limits
        e = (above - below) * self.w_limits
        La = [[L[k][l] * act[k] for l in range(3)] for k in range(3)]
        H = [[None] * 3 for _ in range(3)]
        for l in range(3):
            for m in range(l, 3):
                H[l][m] = H[m][l] = La[0][l] * L[0][m] + La[1][l] * L[1][m] + La[2][l] * L[2][m]
        g = [e[0] * L[0][l] + e[1] * L[1][l] + e[2] * L[2][l] for l in range(3)]
        return H, g

    def normal_equations(self, s: PoseState):
        """Blocks of J^T J and J^T r (keypoints + limits + image) of every frame.

        Unknowns: global ``[t (cm), w_0]`` (6), finger f ``[w_a, w_b, w_c]`` (9).
        Returns A (T,5,9,9) finger blocks, B (T,5,9,6) finger-global coupling,
        Hg (T,6,6) global block, gf (T,5,9), gg (T,6).  The solver uses the
        frame-last layout of :meth:`_normal_soa` directly.
        """
        A, B, Hg, gf, gg = self._normal_soa(s)
        return (A.permute(2, 3, 0, 1), B.permute(2, 3, 0, 1), Hg.permute(2, 0, 1), gf.permute(1, 2, 0), gg.T)

    def _keypoint_rows(self, s: PoseState, lever: torch.Tensor, sw: torch.Tensor):
        """The 3D keypoint rows of every finger: (J (12, 15, T, 5), r (12, T, 5)).

        Rows (keypoint i, axis x); columns as :func:`.image_term.finger_rows`.  With
        ``V_im = s_i c_im`` (weighted lever arm, zero where joint m does not move
        keypoint i) the rotation columns are ``-[V_im]x`` and the translation
        columns ``s_i I`` (none for the wrist-relative term).
        """
        T = s.R.shape[0]
        V = lever * (sw[:, None, None] * self.mask4[..., None, None])  # (4 i, 4 m, 3, T, 5)
        rot = -skew(V.movedim(2, -1)).permute(0, 4, 1, 5, 2, 3)  # (4 i, 3 x, 4 m, 3, T, 5) = -[V_im]x
        tw = 0.0 if self.relative3d else 1.0
        eye = torch.eye(3, dtype=V.dtype, device=V.device)[None, :, :, None, None]
        trans = (sw[:, None, None] * tw) * eye  # (4 i, 3 x, 3, T, 5)
        J = torch.cat([trans, rot.flatten(2, 3)], 2).reshape(12, 15, T, 5)
        r = s.res.index_select(1, self.kp_idx).view(T, 5, 4, 3).permute(2, 3, 0, 1).reshape(12, T, 5)
        return J, r

    def _normal_soa(self, s: PoseState):
        """:meth:`normal_equations` frame-last: A (9, 9, T, 5), B (9, 6, T, 5) and
        gf (9, T, 5) per (frame, finger); Hg (6, 6, T) and gg (6, T).

        Each finger's rows (its 4 keypoints in 3D and in the image) are 20 x 15 per
        frame; their Gram matrix is formed over whole arrays (:func:`.soa.gram`),
        the joint limits are added to the finger blocks, and the global block sums
        the fingers' and adds the wrist keypoint (translation only).
        """
        T = s.R.shape[0]
        sw = self.sw.index_select(1, self.kp_idx).view(T, 5, 4).permute(2, 0, 1)  # (4 i, T, 5)
        lever = self._lever_soa(s)
        J, r = self._keypoint_rows(s, lever, sw)
        width = image_term.row_width(3)
        if s.img_rows is not None:
            Ji, ei = image_term.finger_rows(lever, s.img_rows, s.img_res, self.kp_idx)
            J, r, width = torch.cat([J, Ji]), torch.cat([r, ei]), width + image_term.row_width(2)
        H, g = soa.gram(J, r, width)  # (15, 15, T, 5), (15, T, 5)
        Hl, gl = self._limit_terms(s)
        A = H[6:, 6:].clone()
        for k in range(3):
            blk = A[3 * k:3 * k + 3, 3 * k:3 * k + 3]
            for y in range(3):
                for z in range(3):
                    blk[y, z] += Hl[y][z][k]
        gf = g[6:] + torch.stack([gl[x][k] for k in range(3) for x in range(3)])
        Hg, gg = H[:6, :6].sum(-1), g[:6].sum(-1)
        if not self.relative3d:
            sw0 = self.sw[:, 0]
            Hg[:3, :3] += torch.eye(3, dtype=sw0.dtype, device=sw0.device)[..., None] * (sw0 * sw0)
            gg[:3] += sw0 * s.res[:, 0].T
        if s.img_rows is not None:
            H0, g0 = soa.gram(s.img_rows[:, 0].permute(1, 2, 0), s.img_res[:, 0].T)  # (3, 3, T), (3, T)
            Hg[:3, :3] += H0
            gg[:3] += g0
        return A, H[6:, :6], Hg, gf, gg

    # --- one damped Gauss-Newton step -----------------------------------------------

    def step(self, s: PoseState, lam: torch.Tensor, mu: float = 10.0):
        """Solve (H + lam (diag H + mu)) x = -g for every frame (Schur complement
        on the finger blocks).  ``mu`` (cm^2 / rad^2 and cm^2 / cm^2) keeps the
        damping alive in directions the keypoints barely see (twist about a bone).

        Returns (new R (T,16,3,3), new transl (T,3) metres, ok (T,) bool: the
        damped system was positive definite)."""
        T = s.R.shape[0]
        A, B, Hg, gf, gg = self._normal_soa(s)
        lam = lam.to(s.R.dtype)
        dA = A.diagonal(0, 0, 1)  # (T, 5, 9) view
        dA.mul_(1.0 + lam[:, None, None]).add_(lam[:, None, None] * mu)
        dH = Hg.diagonal(0, 0, 1)  # (T, 6)
        dH.mul_(1.0 + lam[:, None]).add_(lam[:, None] * mu)

        # Schur complement on the finger blocks: with A = L L^T and Y = L^-1 [B | g_f],
        # S = Hg - sum_f Y_B^T Y_B and the global rhs -g_g + sum_f Y_B^T Y_g.
        L, inv, ok_a = soa.cholesky(A)  # (9, 9, T, 5)
        Y = soa.forward_sub(L, inv, torch.cat([B, gf[:, None]], 1))  # (9, 7, T, 5)
        YB, Yg = Y[:, :6], Y[:, 6]
        YtY, Ytg = soa.gram(YB, Yg)  # (6, 6, T, 5), (6, T, 5)
        S = Hg - YtY.sum(-1)
        LS, invS, ok_s = soa.cholesky(S)
        dg = soa.back_sub(LS, invS, soa.forward_sub(LS, invS, Ytg.sum(-1) - gg))  # (6, T)
        # finger steps: A df = -(g_f + B dg)  ->  L^T df = -(Y_g + Y_B dg)
        df = soa.back_sub(L, inv, Yg + (YB * dg[None, :, :, None]).sum(1))  # (9, T, 5)

        dg = dg.T  # (T, 6)
        w = torch.cat([dg[:, 3:], -df.permute(1, 2, 0).reshape(T, 45)], 1).view(T, 16, 3)
        ok = ok_a.all(1) & ok_s & torch.isfinite(w).all(2).all(1) & torch.isfinite(dg).all(1)
        w = torch.where(ok[:, None, None], w, torch.zeros_like(w))  # world-axis rotation vectors
        R = soa.rotate_right(s.R, s.glob, w)
        transl = s.transl + torch.where(ok[:, None], dg[:, :3], torch.zeros_like(dg[:, :3])) / 100.0
        return R, transl, ok


def _in_front(s: PoseState, min_z_cm: float = 1.0) -> torch.Tensor:
    """(T,) bool: every keypoint of the frame at least ``min_z_cm`` in front of the camera."""
    return s.keypoints[..., 2].amin(-1) >= min_z_cm


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
        # A step never takes a hand from in front of the camera to behind it: there the
        # image term's projection is clamped and its cost can look low (a real clip,
        # slpio_asl_different, had a frame's wrist land at z = -4.7 m).
        ok = ok & (_in_front(cand) | ~_in_front(s))
        better = ok & (cand.cost <= s.cost)
        s = s.where(better, cand)
        lam = torch.where(better, (lam / 3.0).clamp_min(1e-7), (lam * 5.0).clamp_max(1e7))
    return s
