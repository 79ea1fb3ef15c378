"""The hand-model layer: shape blend, forward kinematics and linear blend skinning.

Works for the open hand model and official MANO (same key layout, see
:class:`~lagc_hand.handmodel.params.HandModelParams`).  Semantics follow MANO
with ``flat_hand_mean=True``: a zero ``hand_pose`` is the flat rest hand, and
every joint rotation is relative to its parent in the rest pose.

Everything is batched (no Python loop over the batch; the only loop is over
the 4 depth levels of the kinematic tree), float32 by default and works on any
device.  For fitting, ``return_vertices=False`` skins only the 5 fingertip
vertices, which is what 21 keypoints need.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lagc_hand.handmodel.params import NUM_POSE_FEATURES, HandModelParams
from lagc_hand.handmodel.torch_rotations import axis_angle_to_matrix
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC, NUM_JOINTS


@dataclass
class HandOutput:
    """Posed hand, model frame (+ ``transl``), metres.

    * ``joints`` ``(B, 16, 3)`` MANO joint order.
    * ``keypoints`` ``(B, 21, 3)`` public order (wrist, thumb..pinky base to tip).
    * ``vertices`` ``(B, V, 3)``, or ``None`` when not asked for.
    * ``global_rotmats`` ``(B, 16, 3, 3)`` each joint's rotation in the model frame.
    """

    joints: torch.Tensor
    keypoints: torch.Tensor
    vertices: torch.Tensor | None
    global_rotmats: torch.Tensor


def _depth_levels(parents: np.ndarray) -> list[np.ndarray]:
    depth = np.zeros(len(parents), dtype=np.int64)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return [np.flatnonzero(depth == d) for d in range(int(depth.max()) + 1)]


class HandModel(torch.nn.Module):
    """Torch layer built from :class:`HandModelParams`.

    ``num_betas`` limits the shape space (default: all of the model's).
    """

    def __init__(self, params: HandModelParams, num_betas: int | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        params = params.normalized()
        self.side = params.side
        self.model_id = params.model_id
        nb = params.num_betas if num_betas is None else min(int(num_betas), params.num_betas)
        self.num_betas = nb
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731

        shapedirs = params.shapedirs[:, :, :nb]
        jreg = params.J_regressor.astype(np.float64)
        self.register_buffer("v_template", t(params.v_template))
        self.register_buffer("shapedirs", t(shapedirs))
        self.register_buffer("weights", t(params.weights))
        # Joints are linear in the vertices, so regress template and shape
        # directions once: rest joints then cost a (16x3xB) product, not (16xV).
        self.register_buffer("j_template", t(jreg @ params.v_template.astype(np.float64)))
        self.register_buffer("j_shapedirs", t(np.einsum("jv,vdb->jdb", jreg, shapedirs.astype(np.float64))))
        self.has_posedirs = params.has_pose_correctives
        # (135, V*3) so pose offsets are one matmul of the (B, 135) features.
        pd = params.posedirs.reshape(-1, NUM_POSE_FEATURES).T if self.has_posedirs else np.zeros((NUM_POSE_FEATURES, 0))
        self.register_buffer("posedirs", t(pd))
        self.register_buffer("faces", torch.as_tensor(params.f, dtype=torch.long))
        tips = params.tip_vertex_ids
        self.register_buffer("tip_vertex_ids", torch.as_tensor(tips, dtype=torch.long))
        self.register_buffer("hands_components", t(params.hands_components))
        self.register_buffer("hands_mean", t(params.hands_mean))
        self.register_buffer("to_public", torch.as_tensor(MANO21_TO_PUBLIC, dtype=torch.long))

        parents = params.parents
        self.parents = parents
        levels = _depth_levels(parents)
        order = np.concatenate(levels)
        slot = np.argsort(order)  # where each joint sits in the level-ordered concatenation
        # Joints are permuted once into level order; each level is then a
        # contiguous block whose parents are, for MANO's tree, either one joint
        # (the wrist) or the previous block in finger order, so slices replace
        # per-level gathers (advanced indexing dominated the fit's backward pass).
        self._order = order.tolist()
        self._unorder = slot.tolist()
        self._levels = []
        start = len(levels[0])
        for lv in levels[1:]:
            par = slot[parents[lv]]
            block = slice(start, start + len(lv))
            if np.all(par == par[0]):
                par_sel = slice(int(par[0]), int(par[0]) + 1)  # broadcasts over the block
            elif np.all(np.diff(par) == 1):
                par_sel = slice(int(par[0]), int(par[-1]) + 1)
            else:
                par_sel = par.tolist()
            self._levels.append((block, par_sel))
            start += len(lv)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    # --- pieces -----------------------------------------------------------------

    def _betas(self, betas: torch.Tensor | None, batch: int | None) -> torch.Tensor:
        """``None``/``(nb,)``/``(1, nb)``/``(B, nb)`` -> ``(1 or B, num_betas)``."""
        if betas is None:
            return self.v_template.new_zeros(1, self.num_betas)
        betas = torch.as_tensor(betas, dtype=self.v_template.dtype, device=self.v_template.device)
        if betas.ndim == 1:
            betas = betas[None]
        if batch is not None and betas.shape[0] not in (1, batch):
            raise ValueError(f"betas has batch {betas.shape[0]}, expected 1 or {batch}")
        nb = betas.shape[1]
        if nb > self.num_betas:
            raise ValueError(f"betas has {nb} coefficients, the model has {self.num_betas}")
        if nb < self.num_betas:
            betas = torch.nn.functional.pad(betas, (0, self.num_betas - nb))
        return betas

    def rest_joints(self, betas: torch.Tensor | None = None) -> torch.Tensor:
        """``(B or 1, 16, 3)`` rest-pose joints for shape ``betas (B, nb)``."""
        b = self._betas(betas, None)
        return self.j_template + torch.einsum("jdk,bk->bjd", self.j_shapedirs, b)

    def shaped_vertices(self, betas: torch.Tensor | None = None) -> torch.Tensor:
        """``(B or 1, V, 3)`` rest-pose vertices for shape ``betas``."""
        b = self._betas(betas, None)
        return self.v_template + torch.einsum("vdk,bk->bvd", self.shapedirs, b)

    def pca_to_hand_pose(self, coeffs: torch.Tensor, add_mean: bool = False) -> torch.Tensor:
        """``(B, nc)`` PCA coefficients -> ``(B, 45)`` axis-angle hand pose
        relative to the flat hand (``add_mean`` adds ``hands_mean``)."""
        nc = coeffs.shape[-1]
        pose = coeffs @ self.hands_components[:nc]
        return pose + self.hands_mean if add_mean else pose

    def _kinematics(self, rotmats: torch.Tensor, rest_j: torch.Tensor):
        """Global rotations ``(B,16,3,3)`` and posed joints ``(B,16,3)``.

        Processes one depth level of the tree at a time (wrist; the five
        finger bases; ...), so the loop runs 4 times whatever the batch."""
        batch = rotmats.shape[0]
        local = rotmats[:, self._order]
        rest = rest_j[:, self._order]
        rots = [local[:, :1]]
        pos = [rest[:, :1].expand(batch, -1, -1)]
        prev_r, prev_p, prev_start = rots[0], pos[0], 0
        for block, par_sel in self._levels:
            # parents of this block live in the previous level's block
            if isinstance(par_sel, slice):
                sel = slice(par_sel.start - prev_start, par_sel.stop - prev_start)
                rp, pp, jp = prev_r[:, sel], prev_p[:, sel], rest[:, par_sel]
            else:
                cat_r, cat_p = torch.cat(rots, 1), torch.cat(pos, 1)
                rp, pp, jp = cat_r[:, par_sel], cat_p[:, par_sel], rest[:, par_sel]
            bone = rest[:, block] - jp
            r = rp @ local[:, block]
            p = pp + (rp @ bone[..., None])[..., 0]
            rots.append(r)
            pos.append(p)
            prev_r, prev_p, prev_start = r, p, block.start
        return torch.cat(rots, 1)[:, self._unorder], torch.cat(pos, 1)[:, self._unorder]

    def _skin(self, rotmats, betas_b, rg, pg, rest_j, vertex_ids=None):
        """Linear blend skinning of all vertices (or ``vertex_ids``)."""
        if vertex_ids is None:
            vt, sd, w = self.v_template, self.shapedirs, self.weights
        else:
            vt, sd, w = self.v_template[vertex_ids], self.shapedirs[vertex_ids], self.weights[vertex_ids]
        v = vt + torch.einsum("vdk,bk->bvd", sd, betas_b)
        batch = rotmats.shape[0]
        v = v.expand(batch, -1, -1)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
            feat = (rotmats[:, 1:] - eye).reshape(batch, NUM_POSE_FEATURES)
            pd = self.posedirs.view(NUM_POSE_FEATURES, -1, 3)
            if vertex_ids is not None:
                pd = pd[:, vertex_ids]
            v = v + (feat @ pd.reshape(NUM_POSE_FEATURES, -1)).view(batch, -1, 3)
        # Transform of joint j: x -> Rg_j (x - J_j) + p_j
        a_t = pg - (rg @ rest_j.expand(batch, -1, -1)[..., None])[..., 0]
        t_rot = torch.einsum("vj,bjxy->bvxy", w, rg)
        t_tr = w @ a_t  # (B, n, 3)
        return (t_rot @ v[..., None])[..., 0] + t_tr

    # --- forward ----------------------------------------------------------------

    def forward_rotmat(self, rotmats: torch.Tensor, betas: torch.Tensor | None = None,
                       transl: torch.Tensor | None = None, return_vertices: bool = True) -> HandOutput:
        """Pose from rotation matrices.

        ``rotmats`` ``(B, 16, 3, 3)``: joint 0 = global orientation (about the
        wrist joint), joints 1..15 relative to their parent, MANO order.
        ``betas`` ``(B, nb)``, ``(1, nb)`` or ``(nb,)`` (shared); ``transl`` ``(B, 3)`` metres.
        """
        if rotmats.ndim != 4 or rotmats.shape[1:] != (NUM_JOINTS, 3, 3):
            raise ValueError(f"rotmats must be (B, 16, 3, 3), got {tuple(rotmats.shape)}")
        batch = rotmats.shape[0]
        rotmats = rotmats.to(self.v_template.dtype)
        betas_b = self._betas(betas, batch)
        rest_j = self.j_template + torch.einsum("jdk,bk->bjd", self.j_shapedirs, betas_b)
        rg, pg = self._kinematics(rotmats, rest_j)
        tips = self._skin(rotmats, betas_b, rg, pg, rest_j, self.tip_vertex_ids)
        verts = self._skin(rotmats, betas_b, rg, pg, rest_j) if return_vertices else None
        joints = pg
        if transl is not None:
            tr = torch.as_tensor(transl, dtype=joints.dtype, device=joints.device).reshape(-1, 1, 3)
            joints = joints + tr
            tips = tips + tr
            verts = verts + tr if verts is not None else None
        kp = torch.cat([joints, tips], dim=1)[:, self.to_public]
        return HandOutput(joints=joints, keypoints=kp, vertices=verts, global_rotmats=rg)

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                betas: torch.Tensor | None = None, transl: torch.Tensor | None = None,
                return_vertices: bool = True) -> HandOutput:
        """Pose from axis-angle: ``global_orient`` ``(B, 3)``, ``hand_pose``
        ``(B, 45)`` (joints 1..15, radians, relative to the flat hand)."""
        batch = global_orient.shape[0]
        if hand_pose.shape != (batch, 45):
            raise ValueError(f"hand_pose must be ({batch}, 45), got {tuple(hand_pose.shape)}")
        aa = torch.cat([global_orient.reshape(batch, 1, 3), hand_pose.reshape(batch, 15, 3)], dim=1)
        return self.forward_rotmat(axis_angle_to_matrix(aa.to(self.v_template.dtype)), betas, transl, return_vertices)
