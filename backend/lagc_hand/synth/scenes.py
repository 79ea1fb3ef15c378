"""Interacting-hand scenes for the synthetic test clips (pure numpy + the torch hand layer).

Each scene is a short motion of both hands of one hand model: per frame a
global orientation, a wrist position and a finger pose per hand, in the
**OpenCV camera frame** (metres; x right, y down, z forward).  The camera
looks at a person: their right hand is on the image's left when the hands
are held apart in front of them.

Scenes (:data:`SCENES`):

* ``pray``      palms together, fingers up; the hands come together, then the
                pair turns about the vertical so one hand hides the other.
* ``clasp``     palms facing, fingers curled and crossed over the other hand.
* ``interlace`` palms facing, spread fingers offset by half a finger so they
                interleave, bent at the knuckles.
* ``occlude``   the right hand near the camera, the left hand passing behind it.
* ``cross``     the hands swap sides at different depths.

Touching scenes are made free of interpenetration by pushing the hands
apart along the palm normal until no vertex of one lies inside the other
(winding numbers, :func:`lagc_hand.fitting.penetration.penetration_depth`).
The renderer (``scripts/render_interacting.py``) turns them into video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

SIDES = ("left", "right")
SCENES = ("pray", "clasp", "interlace", "occlude", "cross")

UP = np.array([0.0, -1.0, 0.0])
TOWARDS_CAMERA = np.array([0.0, 0.0, -1.0])
RIGHTWARD = np.array([1.0, 0.0, 0.0])


@dataclass
class HandPoseSeq:
    """One hand's motion, ``T`` frames.

    rotmats: (T, 16, 3, 3) MANO-order joint rotations; joint 0 takes the model
             frame to the camera frame (about the wrist joint).
    wrist:   (T, 3) wrist joint position, camera frame, metres.
    """

    rotmats: np.ndarray
    wrist: np.ndarray


def orientation(side: str, fingers: np.ndarray, palm: np.ndarray) -> np.ndarray:
    """Model -> camera rotation (3, 3) of a hand whose fingers point along
    ``fingers`` and whose palm faces ``palm`` (camera-frame unit vectors,
    orthogonalised here).  Model frame: right hand fingers -x, palm -y,
    thumb +z; the left hand mirrors x."""
    f = np.asarray(fingers, float) / np.linalg.norm(fingers)
    p = np.asarray(palm, float) - f * float(np.dot(palm, f))
    p /= np.linalg.norm(p)
    if side == "right":
        return np.stack([-f, -p, np.cross(f, p)], axis=1)
    return np.stack([f, -p, -np.cross(f, p)], axis=1)


def _finger_rotmats(joints: np.ndarray, side: str, flex, spread=None, opposition=0.0) -> np.ndarray:
    """(15, 3, 3) finger-joint rotations from anatomical angles (see :mod:`lagc_hand.handmodel.poses`)."""
    from lagc_hand.handmodel.poses import pose_from_angles

    aa = pose_from_angles(joints, side, np.asarray(flex, float), spread, opposition).reshape(15, 3)
    return Rotation.from_rotvec(aa).as_matrix()


def _flex(mcp: float, pip: float, dip: float, thumb=(0.1, 0.2, 0.2)) -> np.ndarray:
    f = np.tile([mcp, pip, dip], (5, 1)).astype(float)
    f[0] = thumb
    return f


def _seq(glob: np.ndarray, fingers: np.ndarray, wrist: np.ndarray) -> HandPoseSeq:
    T = len(glob)
    R = np.empty((T, 16, 3, 3))
    R[:, 0] = glob
    R[:, 1:] = fingers
    return HandPoseSeq(R, np.asarray(wrist, float))


def _smooth01(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _pair_scene(models, joints, n_frames: int, rel: dict, pair_rot: np.ndarray, centre: np.ndarray,
                approach: np.ndarray, min_gap: float) -> dict[str, HandPoseSeq]:
    """Two hands in a fixed relative configuration ``rel`` (side -> (R, wrist
    offset, finger rotmats)), separated along x by the contact gap plus
    ``approach`` (T,) extra metres, moved as a pair by ``pair_rot`` (T, 3, 3)
    about ``centre`` (T, 3)."""
    gap = contact_gap(models, rel, min_gap)
    out = {}
    for side in SIDES:
        R, off, fing = rel[side]
        sgn = -1.0 if side == "right" else 1.0  # right hand on the image's left
        glob = np.einsum("tij,jk->tik", pair_rot, R)
        local = off[None] + sgn * (0.5 * (gap + approach))[:, None] * RIGHTWARD
        wrist = centre + np.einsum("tij,tj->ti", pair_rot, local)
        out[side] = _seq(glob, np.broadcast_to(fing, (n_frames, 15, 3, 3)), wrist)
    return out


def contact_gap(models, rel: dict, min_gap: float = 0.001, step: float = 0.004) -> float:
    """Smallest x separation (metres, added to the offsets in ``rel``) at which
    the two hands do not interpenetrate, to ~1 mm."""
    import torch

    from lagc_hand.fitting.penetration import penetration_depth

    def verts(side, gap):
        R, off, fing = rel[side]
        sgn = -1.0 if side == "right" else 1.0
        wrist = off + sgn * 0.5 * gap * RIGHTWARD
        return posed_vertices(models[side], R[None], fing[None], wrist[None])[0]

    faces = {s: models[s].faces.cpu().numpy() for s in SIDES}

    def penetrates(gap: float, every: int = 7) -> bool:
        vl, vr = verts("left", gap), verts("right", gap)
        # Cheap pre-test: no vertex of one hand near the other's vertices -> no penetration.
        sub_l, sub_r = vl[::every], vr[::every]
        if np.linalg.norm(sub_l[:, None] - vr[None, ::4], axis=-1).min() > 0.01:
            return False
        a, _ = penetration_depth(sub_l, vr, faces["right"])
        if a > 0.0:
            return True
        b, _ = penetration_depth(sub_r, vl, faces["left"])
        return b > 0.0

    with torch.no_grad():
        lo, hi = -0.02, 0.0
        while penetrates(hi):
            lo, hi = hi, hi + step
            if hi > 0.3:
                raise RuntimeError("scene hands cannot be separated")
        while hi - lo > 0.001:
            mid = 0.5 * (lo + hi)
            if penetrates(mid):
                lo = mid
            else:
                hi = mid
        while penetrates(hi, every=2):  # final check on a denser vertex set
            hi += 0.001
    return hi + min_gap


def posed_vertices(model, glob: np.ndarray, fingers: np.ndarray, wrist: np.ndarray,
                   keypoints: bool = False):
    """Camera-frame vertices (B, V, 3) (and keypoints (B, 21, 3) if asked) of
    ``model`` with global rotations ``glob`` (B,3,3), finger rotations
    ``fingers`` (B,15,3,3) and wrist positions ``wrist`` (B,3)."""
    import torch

    dtype = model.v_template.dtype
    R = np.concatenate([np.asarray(glob)[:, None], np.asarray(fingers)], 1)
    with torch.no_grad():
        j0 = model.rest_joints()[0, 0].cpu().numpy()
        out = model.forward_rotmat(torch.as_tensor(R, dtype=dtype),
                                   transl=torch.as_tensor(np.asarray(wrist) - j0, dtype=dtype))
    v = out.vertices.cpu().numpy().astype(np.float64)
    if keypoints:
        return v, out.keypoints.cpu().numpy().astype(np.float64)
    return v


def build_scene(name: str, models, n_frames: int = 36) -> dict[str, HandPoseSeq]:
    """Per-side :class:`HandPoseSeq` of scene ``name`` (see the module docstring).

    models: ``{"left": HandModel, "right": HandModel}`` (torch layer).
    """
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; choose from {', '.join(SCENES)}")
    joints = {s: models[s].rest_joints()[0].detach().cpu().numpy().astype(np.float64) for s in SIDES}
    T = n_frames
    u = np.linspace(0.0, 1.0, T)
    eye = np.tile(np.eye(3), (T, 1, 1))

    if name in ("pray", "clasp", "interlace"):
        if name == "pray":
            # Thumb laid along the index (out of the way of the other palm).
            spread = np.array([-0.5, 0.0, 0.0, 0.0, 0.0])
            fl = {s: _finger_rotmats(joints[s], s, _flex(0.05, 0.05, 0.02), spread, -0.35) for s in SIDES}
            tilt = {"right": 0.0, "left": 0.0}
            off = {s: np.zeros(3) for s in SIDES}
        elif name == "clasp":
            fl = {s: _finger_rotmats(joints[s], s, _flex(0.9, 1.1, 0.6, thumb=(0.2, 0.3, 0.3))) for s in SIDES}
            tilt = {"right": np.radians(35.0), "left": np.radians(-35.0)}
            off = {s: np.zeros(3) for s in SIDES}
        else:
            spread = np.array([-0.4, 0.18, 0.06, -0.06, -0.18])
            fl = {s: _finger_rotmats(joints[s], s, _flex(0.55, 0.35, 0.15), spread, -0.3) for s in SIDES}
            tilt = {"right": 0.0, "left": 0.0}
            # Half a finger spacing along the knuckle line (z here) so the fingers interleave.
            off = {"right": np.array([0.0, 0.0, -0.005]), "left": np.array([0.0, 0.0, 0.005])}
        rel = {}
        for s in SIDES:
            palm = RIGHTWARD if s == "right" else -RIGHTWARD
            fingers = Rotation.from_rotvec(palm * tilt[s]).apply(UP)
            rel[s] = (orientation(s, fingers, palm), off[s] + np.array([0.0, 0.085, 0.0]), fl[s])
        if name == "clasp":
            approach = np.zeros(T)  # in contact from the first frame
            yaw = np.radians(-30 + 60 * u)
        else:
            approach = 0.16 * (1.0 - _smooth01(u / 0.35))  # apart, then together
            yaw = np.radians(np.where(u < 0.35, 10.0, 10.0 + 60.0 * np.sin(np.pi * (u - 0.35) / 0.65 * 1.5)))
        pitch = np.radians(-12.0)
        pair = Rotation.from_euler("yx", np.stack([yaw, np.full(T, pitch)], 1)).as_matrix()
        centre = np.stack([0.01 * np.sin(2 * np.pi * u), np.full(T, 0.0), np.full(T, 0.46)], 1)
        return _pair_scene(models, joints, T, rel, pair, centre, approach, 0.001)

    relaxed = {s: _finger_rotmats(joints[s], s, _flex(0.25, 0.3, 0.15), np.array([0, .1, 0, -.1, -.2]), 0.3)
               for s in SIDES}
    if name == "occlude":
        # Right hand near the camera, palm to it; the left hand (back to the camera) slides behind.
        rR = orientation("right", UP, TOWARDS_CAMERA)
        rL = orientation("left", UP + 0.2 * RIGHTWARD, -TOWARDS_CAMERA)
        wr = np.stack([-0.04 + 0.01 * np.sin(2 * np.pi * u), np.full(T, 0.085), np.full(T, 0.40)], 1)
        xl = 0.13 - 0.14 * np.sin(np.pi * u)  # 0.13 -> -0.01 -> 0.13
        wl = np.stack([xl, np.full(T, 0.10), np.full(T, 0.52)], 1)
        twist = Rotation.from_euler("y", np.radians(15 * np.sin(2 * np.pi * u))[:, None]).as_matrix()
        return {"right": _seq(twist @ rR, np.broadcast_to(relaxed["right"], (T, 15, 3, 3)), wr),
                "left": _seq(eye @ rL, np.broadcast_to(relaxed["left"], (T, 15, 3, 3)), wl)}

    # cross: the hands swap sides, right one nearer the camera.
    rR = orientation("right", UP - 0.3 * RIGHTWARD, TOWARDS_CAMERA)
    rL = orientation("left", UP + 0.3 * RIGHTWARD, TOWARDS_CAMERA + 0.3 * RIGHTWARD)
    s = _smooth01(u)
    wr = np.stack([-0.13 + 0.24 * s, 0.09 - 0.03 * np.sin(np.pi * u), np.full(T, 0.42)], 1)
    wl = np.stack([0.13 - 0.24 * s, 0.09 + 0.02 * np.sin(np.pi * u), np.full(T, 0.53)], 1)
    return {"right": _seq(eye @ rR, np.broadcast_to(relaxed["right"], (T, 15, 3, 3)), wr),
            "left": _seq(eye @ rL, np.broadcast_to(relaxed["left"], (T, 15, 3, 3)), wl)}


def visible_fractions(verts: dict[str, np.ndarray], faces: dict[str, np.ndarray], K: np.ndarray,
                      width: int, height: int) -> dict[str, float]:
    """Share of each hand's image area that is not hidden by the other hand or
    cut off by the frame (painter's algorithm on the projected triangles).

    verts: side -> (V, 3) camera-frame vertices; faces: side -> (F, 3).
    """
    import cv2

    ids = {s: i + 1 for i, s in enumerate(SIDES)}
    tris = []
    alone = {}
    for s in SIDES:
        v = verts[s]
        p = v[:, :2] / v[:, 2:3] * K[0, 0] + K[:2, 2]
        t = p[faces[s]]
        depth = v[faces[s], 2].mean(1)
        tris.extend((d, tt, ids[s]) for d, tt in zip(depth, t))
        # Area without the other hand and without the frame edge, on a canvas with margins.
        m = np.zeros((height * 3, width * 3), np.uint8)
        for tt in t:
            cv2.fillConvexPoly(m, np.round((tt + [width, height]) * 4).astype(np.int32), 1, shift=2)
        alone[s] = int(m.sum())
    lab = np.zeros((height, width), np.uint8)
    for _, tt, i in sorted(tris, key=lambda x: -x[0]):
        cv2.fillConvexPoly(lab, np.round(tt * 4).astype(np.int32), i, shift=2)
    return {s: float((lab == ids[s]).sum()) / max(alone[s], 1) for s in SIDES}
