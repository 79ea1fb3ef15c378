"""Two-hand fitting: both hands at once where both are present, without
interpenetration, keeping observed contacts.

The single-hand fitter (:func:`lagc_hand.fitting.fit_hand`) fits each hand to
its own placed keypoints.  Placement errors in depth (a few centimetres are
common when hands overlap) then push one hand into the other.  This stage
refines, for the frames where both hands are present, both hands' poses and
translations together (shapes stay as fitted), batched over all those frames:

* keypoints: squared distance to each hand's placed keypoints (cm^2);
* pose prior: squared change of the rotations from the single-hand fit
  (which already respects the joint limits), so fingers only move where
  the other terms need them to;
* interpenetration: :func:`lagc_hand.fitting.penetration.symmetric_penetration_loss`
  -- each hand's vertices (a strided subset) inside the other hand's capsules;
* contact: keypoint pairs of the two hands observed closer than
  ``contact_threshold`` stay within it
  (:func:`~lagc_hand.fitting.penetration.contact_loss`).

Frames where one hand is alone keep their single-hand fit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import torch

from lagc_hand.fitting import FitConfig, HandFit, fit_hand
from lagc_hand.fitting.adam import Adam
from lagc_hand.handmodel.torch_rotations import matrix_to_rot6d, rot6d_to_matrix
from lagc_hand.fitting.penetration import (SEGMENTS, CapsuleHand, _segment_distance,
                                               capsule_penetration_loss, contact_loss, contact_pairs)
from lagc_hand_blender.core.rotations import matrix_to_quat, quat_sign_continuity
from lagc_hand_blender.core.skeleton import PUBLIC_TO_MANO21

SIDES = ("left", "right")


@dataclass
class TwoHandConfig:
    """Options of the two-hand refinement (weights relative to the keypoint term, cm^2).

    w_penetration: x mean squared capsule depth (cm^2) per vertex.
    w_contact:     x mean squared excess distance (cm^2) of observed contact pairs.
    w_prior:       x squared change of the 6D rotation parameters from the single-hand fit.
    w_root_xy, w_root_z: x squared wrist displacement (cm^2) across / along the camera ray;
                   the root-relative keypoints have weight 1.
    contact_threshold: metres; observed keypoint pairs closer than this are contacts.
    vertex_stride: use every n-th vertex for the penetration term (speed).
    """

    iterations: int = 40
    lr: float = 0.01
    lr_translation: float = 0.002  # metres per step (Adam), so hands can move apart by centimetres
    w_penetration: float = 3000.0
    w_contact: float = 2.0
    w_prior: float = 20.0
    w_root_xy: float = 3.0
    w_root_z: float = 0.3
    contact_threshold: float = 0.025
    vertex_stride: int = 5
    # Capsule radius / median vertex distance of its bone: > 1 so the proxy covers the
    # mesh (the median leaves the fat parts of the palm and thumb outside).
    capsule_scale: float = 1.15
    near_distance: float = 0.04  # frames whose hands' keypoints come closer than this (m) are refined
    device: str = "cpu"
    stats: dict = field(default_factory=dict)


def pose_subset(model, rotmats: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor,
                vertex_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(vertices (B, n, 3) of ``vertex_ids``, keypoints (B, 21, 3) public order), camera frame.

    Skins only the chosen vertices: the full mesh costs ~10x more per step and
    the penetration term does not need every vertex."""
    o = model.forward_rotmat(rotmats, betas, transl, return_vertices=False)
    batch = rotmats.shape[0]
    betas_b = model._betas(betas, batch)
    rest_j = model.j_template + torch.einsum("jdk,bk->bjd", model.j_shapedirs, betas_b)
    rg, pg = model._kinematics(rotmats.to(model.v_template.dtype), rest_j)
    v = model._skin(rotmats.to(model.v_template.dtype), betas_b, rg, pg, rest_j, vertex_ids)
    return v + transl.reshape(-1, 1, 3), o.keypoints


def _capsules(model, betas: np.ndarray, cfg_shrink: float) -> CapsuleHand:
    with torch.no_grad():
        b = torch.as_tensor(np.asarray(betas)[None], dtype=model.v_template.dtype, device=model.v_template.device)
        v = model.shaped_vertices(b)[0].cpu().numpy()
        j = model.rest_joints(b)[0].cpu().numpy()
    return CapsuleHand.from_rest_mesh(v, j, model.tip_vertex_ids.cpu().numpy(), shrink=cfg_shrink)


class _TwoHandProblem:
    """The tensors of one two-hand refinement over ``n`` frames (``cfg.device``, the models' dtype).

    Per side: ``caps`` the capsule proxy, ``betas`` (1, B), ``d6_0`` (n, 16, 6)
    the single-hand fit's 6D rotations, ``d6`` / ``transl`` (n, 16, 6) / (n, 3)
    the parameters being optimised (translation in metres, camera frame),
    ``tgt`` (n, 21, 3) the placed keypoints (metres, public order), ``vids``
    the strided vertex ids the penetration term uses.  ``pairs_np`` /
    ``pairs``: (21, 21) bool observed contact pairs (left x right keypoints)."""

    def __init__(self, models: dict, fits: dict[str, HandFit], targets: dict[str, np.ndarray],
                 cfg: TwoHandConfig):
        dev = self.dev = torch.device(cfg.device)
        self.models = models
        self.n = len(next(iter(fits.values())).root)
        self.dtype = models["right"].v_template.dtype
        t = self.tensor
        self.caps = {s: _capsules(models[s], fits[s].betas, cfg.capsule_scale) for s in SIDES}
        self.betas = {s: t(fits[s].betas[None]) for s in SIDES}
        rest_j0 = {s: models[s].rest_joints(self.betas[s])[0, 0].detach() for s in SIDES}
        self.d6_0 = {s: matrix_to_rot6d(t(fits[s].rotmats)) for s in SIDES}
        self.d6 = {s: self.d6_0[s].clone().requires_grad_(True) for s in SIDES}
        self.transl = {s: (t(fits[s].root) - rest_j0[s]).clone().requires_grad_(True) for s in SIDES}
        self.tgt = {s: t(targets[s]) for s in SIDES}
        self.pairs_np = contact_pairs(targets["left"], targets["right"], cfg.contact_threshold)
        self.pairs = torch.as_tensor(self.pairs_np, device=dev)
        self.m21 = torch.as_tensor(PUBLIC_TO_MANO21, device=dev)
        self.seg = torch.as_tensor(SEGMENTS, device=dev)
        self.vids = {s: torch.arange(0, models[s].num_vertices, max(int(cfg.vertex_stride), 1), device=dev)
                     for s in SIDES}

    def tensor(self, a) -> torch.Tensor:
        """``a`` as a tensor of the problem's dtype and device."""
        return torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.dev)

    def forward(self) -> dict:
        """side -> (vertices (n, v, 3) of ``vids``, keypoints (n, 21, 3) public order), camera frame, metres."""
        out = {}
        for s in SIDES:
            out[s] = pose_subset(self.models[s], rot6d_to_matrix(self.d6[s]), self.betas[s], self.transl[s],
                                 self.vids[s])
        return out

    def penetration(self, out: dict, per_frame: bool = False) -> torch.Tensor:
        """Symmetric capsule penetration of ``forward()``'s output: the loss (scalar, m^2), or
        with ``per_frame`` each frame's deepest vertex (n,) metres."""
        (vl, kl), (vr, kr) = out["left"], out["right"]
        caps, m21, seg = self.caps, self.m21, self.seg
        if per_frame:
            res = []
            for va, kb, cb in ((vl, kr, caps["right"]), (vr, kl, caps["left"])):
                seg_a = kb[:, m21]
                d = _segment_distance(va, seg_a[:, seg[:, 0]], seg_a[:, seg[:, 1]])
                r = torch.as_tensor(cb.radii, dtype=self.dtype, device=self.dev)
                res.append((r - d).clamp_min(0).amax(-1).amax(-1))
            return torch.maximum(res[0], res[1])
        return (capsule_penetration_loss(vl, kr[:, m21], caps["right"]) +
                capsule_penetration_loss(vr, kl[:, m21], caps["left"]))


def _two_hand_loss(p: _TwoHandProblem, out: dict, root_w: torch.Tensor, cfg: TwoHandConfig) -> torch.Tensor:
    """The refinement objective (scalar, cm^2 scale) of ``p.forward()``'s output ``out``.

    root_w: (3,) weights of the wrist displacement across / along the camera ray."""
    n = p.n
    loss = 0.0
    for s in SIDES:
        kp = out[s][1]
        rel = ((kp - kp[:, :1]) - (p.tgt[s] - p.tgt[s][:, :1])) * 100.0
        root = (kp[:, 0] - p.tgt[s][:, 0]) * 100.0
        loss = loss + ((rel * rel).sum() + (root * root * root_w).sum()) / n
        loss = loss + cfg.w_prior * ((p.d6[s] - p.d6_0[s]) ** 2).sum() / n
    loss = loss + cfg.w_penetration * p.penetration(out) * 1e4
    if p.pairs_np.any():
        loss = loss + cfg.w_contact * contact_loss(out["left"][1], out["right"][1], p.pairs,
                                                   cfg.contact_threshold) * 1e4
    return loss


def _refined_fits(p: _TwoHandProblem, fits: dict[str, HandFit],
                  targets: dict[str, np.ndarray]) -> dict[str, HandFit]:
    """side -> :class:`HandFit` (n frames, float32, same betas) from the optimised parameters;
    ``error``: (n,) mean keypoint distance to ``targets`` (metres)."""
    result = {}
    for s in SIDES:
        R = rot6d_to_matrix(p.d6[s])
        o = p.models[s].forward_rotmat(R, p.betas[s], p.transl[s], return_vertices=False)
        kp = o.keypoints.cpu().numpy()
        rot = R.cpu().numpy()
        result[s] = HandFit(
            rotmats=rot.astype(np.float32),
            quats=quat_sign_continuity(matrix_to_quat(rot), axis=0).astype(np.float32),
            root=o.joints[:, 0].cpu().numpy().astype(np.float32),
            keypoints3d=kp.astype(np.float32),
            betas=fits[s].betas,
            error=np.linalg.norm(kp - targets[s], axis=-1).mean(-1).astype(np.float32),
        )
    return result


def refine_two_hands(models: dict, fits: dict[str, HandFit], targets: dict[str, np.ndarray],
                     cfg: TwoHandConfig | None = None) -> dict[str, HandFit]:
    """Refine two single-hand fits of the same ``N`` frames together.

    models:  side -> HandModel.
    fits:    side -> :class:`HandFit` of N frames (both hands present in all).
    targets: side -> (N, 21, 3) placed keypoints, camera frame, metres, public order.
    Returns side -> refined :class:`HandFit` (same betas).  ``cfg.stats`` gets
    the capsule penetration before/after (mm, mean of the per-frame deepest
    vertex) and the number of contact pairs.
    """
    cfg = cfg or TwoHandConfig()
    p = _TwoHandProblem(models, fits, targets, cfg)
    # The hand's shape (root-relative keypoints) is well observed; where it sits is
    # less so, and least along the camera ray (depth), which placement gets wrong most.
    root_w = p.tensor([cfg.w_root_xy, cfg.w_root_xy, cfg.w_root_z])
    with torch.no_grad():
        before = p.penetration(p.forward(), per_frame=True).cpu().numpy()
    params = [p.d6[s] for s in SIDES]
    tparams = [p.transl[s] for s in SIDES]
    opt = Adam([(params, cfg.lr), (tparams, cfg.lr_translation)])
    for _ in range(cfg.iterations):
        opt.zero_grad()
        loss = _two_hand_loss(p, p.forward(), root_w, cfg)
        loss.backward()
        opt.step()

    with torch.no_grad():
        after = p.penetration(p.forward(), per_frame=True).cpu().numpy()
        result = _refined_fits(p, fits, targets)
    cfg.stats.update(frames=int(p.n), contact_pairs=int(p.pairs_np.sum()),
                     capsule_depth_before_mm=float(before.mean() * 1000), capsule_depth_after_mm=float(after.mean() * 1000))
    return result


def fit_both_hands(models: dict, targets: dict[str, np.ndarray], present: dict[str, np.ndarray],
                   fit_config: Optional[FitConfig] = None, config: Optional[TwoHandConfig] = None,
                   keypoints2d: Optional[dict[str, np.ndarray]] = None, K: Optional[np.ndarray] = None,
                   confidence: Optional[dict[str, np.ndarray]] = None) -> dict[str, HandFit]:
    """Single-hand fits of each side, then :func:`refine_two_hands` on the frames
    where both are present.

    models: side -> HandModel; targets: side -> (T, 21, 3) placed keypoints
    (camera frame, metres); present: side -> (T,) bool.
    keypoints2d: side -> (T, 21, 2) detector pixels, with K (3, 3) and
    confidence: side -> (T,): the single-hand fits are the image-aligned ones of
    the one-hand path (shape and size from the image too).  Without them the
    shape comes from the detector's 3D alone, and a few frames' detections move
    a whole track in depth: on interact_occlude one followed frame instead of a
    recovered one (71 mm apart in 3D) changed the left hand's size coefficient
    -0.82 -> -1.61 and MRRPE 59 -> 83 mm on every frame.
    Returns side -> :class:`HandFit` over that side's present frames (in
    order), as :func:`lagc_hand.fitting.fit_hand` would, for sides with any
    present frame.
    """
    cfg = config or TwoHandConfig()
    fcfg = fit_config or FitConfig(device=cfg.device)
    t0 = time.perf_counter()
    fits, idx = {}, {}
    for s in SIDES:
        idx[s] = np.flatnonzero(present[s])
        if idx[s].size:
            image = {}
            if keypoints2d is not None and K is not None:
                image = dict(keypoints2d=keypoints2d[s][idx[s]], K=K,
                             confidence=None if confidence is None else confidence[s][idx[s]])
            fits[s] = fit_hand(models[s], targets[s][idx[s]], weights=None, config=fcfg, **image)
    cfg.stats["single_fit_s"] = time.perf_counter() - t0
    if len(fits) < 2:
        return fits
    both = np.flatnonzero(present["left"] & present["right"])
    pos = {s: np.searchsorted(idx[s], both) for s in SIDES}
    if both.size:
        # Only frames where the two hands come close can interpenetrate or touch.
        kl, kr = fits["left"].keypoints3d[pos["left"]], fits["right"].keypoints3d[pos["right"]]
        near = np.linalg.norm(kl[:, :, None] - kr[:, None], axis=-1).min((1, 2)) < cfg.near_distance
        both = both[near]
    cfg.stats["near_frames"] = int(both.size)
    if both.size == 0:
        return fits
    t1 = time.perf_counter()
    # Positions of the shared frames inside each side's fit.
    pos = {s: np.searchsorted(idx[s], both) for s in SIDES}
    sub = {s: HandFit(*(getattr(fits[s], f)[pos[s]] for f in ("rotmats", "quats", "root", "keypoints3d")),
                      betas=fits[s].betas, error=fits[s].error[pos[s]]) for s in SIDES}
    refined = refine_two_hands(models, sub, {s: targets[s][both] for s in SIDES}, cfg)
    out = {}
    for s in SIDES:
        f = fits[s]
        rot, root, kp, err = f.rotmats.copy(), f.root.copy(), f.keypoints3d.copy(), f.error.copy()
        rot[pos[s]], root[pos[s]] = refined[s].rotmats, refined[s].root
        kp[pos[s]], err[pos[s]] = refined[s].keypoints3d, refined[s].error
        out[s] = replace(f, rotmats=rot, root=root, keypoints3d=kp, error=err,
                         quats=quat_sign_continuity(matrix_to_quat(rot), axis=0).astype(np.float32))
    cfg.stats["two_hand_s"] = time.perf_counter() - t1
    return out
