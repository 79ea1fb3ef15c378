"""The motion assembler: one hand's fit and its cleaned motion -> the
:class:`~lagc_hand_blender.core.handmotion.HandTrackMotion` written to the file.

Takes the cleaned motion as plain arrays (any object with the fields of
:class:`lagc_hand.cleanup.CleanedHand`), so fitting does not import cleanup,
which runs after it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lagc_hand.fitting.fit import HandFit, pose_keypoints
from lagc_hand_blender.core.handmotion import HandTrackMotion, HandVariant, absent_hand

#: Rotation of absent frames (HandMotion convention).
_IDENTITY = np.array([1, 0, 0, 0], np.float32)


def unseen_hand_motion(side: str, n_frames: int, model, params) -> HandTrackMotion:
    """A hand never seen in the video: the model's rest shape, nothing present."""
    with torch.no_grad():
        rest_v = model.shaped_vertices()[0].detach().cpu().numpy()
        rest_j = model.rest_joints()[0].detach().cpu().numpy()
    return absent_hand(side, n_frames, rest_v, rest_j, params.tip_vertex_ids, np.zeros(model.num_betas))


def hand_track_motion(side: str, model, params, fit: HandFit, fitted: np.ndarray, cleaned: Any,
                      device: str) -> HandTrackMotion:
    """Assemble one hand.

    fit:     the fit of the frames ``fitted`` (K,) (indices into the T frames).
    cleaned: the cleaned motion over all T frames: ``present`` (T,) bool, ``confidence`` (T,),
             ``keypoints2d`` (T, 21, 2) px, ``raw_quats`` / ``quats`` (T, 16, 4) w-x-y-z,
             ``raw_root`` / ``root`` (T, 3) metres, camera frame.
    Absent frames get the identity rotation, the last known root and zero
    keypoints (HandMotion convention); fitted frames keep exactly the fitted keypoints.
    """
    present = cleaned.present
    raw_kp = pose_keypoints(model, cleaned.raw_quats, cleaned.raw_root, fit.betas, present, device)
    raw_kp[fitted] = fit.keypoints3d
    clean_kp = pose_keypoints(model, cleaned.quats, cleaned.root, fit.betas, present, device)
    raw_root, clean_root = hold_last(cleaned.raw_root, present), hold_last(cleaned.root, present)
    raw_q, clean_q = cleaned.raw_quats.copy(), cleaned.quats.copy()
    raw_q[~present] = clean_q[~present] = _IDENTITY
    kp2d = cleaned.keypoints2d.copy()
    kp2d[~present] = 0.0
    with torch.no_grad():
        b = torch.as_tensor(fit.betas[None], dtype=model.v_template.dtype, device=model.v_template.device)
        rest_v = model.shaped_vertices(b)[0].cpu().numpy()
        rest_j = model.rest_joints(b)[0].cpu().numpy()
    return HandTrackMotion(
        side=side,
        present=present,
        confidence=np.where(present, cleaned.confidence, 0).astype(np.float32),
        keypoints2d=kp2d.astype(np.float32),
        betas=fit.betas.astype(np.float32),
        rest_vertices=rest_v.astype(np.float32),
        rest_joints=rest_j.astype(np.float32),
        tip_vertex_ids=np.asarray(params.tip_vertex_ids, np.int64),
        raw=HandVariant(raw_q.astype(np.float32), raw_root.astype(np.float32), raw_kp.astype(np.float32)),
        clean=HandVariant(clean_q.astype(np.float32), clean_root.astype(np.float32), clean_kp.astype(np.float32)),
    )


def hold_last(root: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(T, 3) roots where absent frames take the last known root (or the first one before any)."""
    out = np.asarray(root, np.float32).copy()
    idx = np.flatnonzero(present)
    if idx.size == 0:
        return np.zeros_like(out)
    last = out[idx[0]]
    for t in range(len(out)):
        if present[t]:
            last = out[t]
        else:
            out[t] = last
    return out
