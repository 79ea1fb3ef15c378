"""Plain helpers shared by several test modules (synthetic hands, a small
OpenCV rasteriser).  A module of its own, not conftest.py: two conftest.py
files exist (tests/ and tests/blender/), so ``from conftest import`` is ambiguous."""
from __future__ import annotations

import numpy as np

from lagc_hand_blender.core.skeleton import MANO_PARENTS, TIP_PARENTS


def skeleton_hand_params(side: str = "right"):
    """A minimal MANO-layout hand model: 16 joint vertices + 5 tip vertices.

    Frame as the open model: wrist at the origin, fingers along -x, thumb
    along +z, palm facing -y (right hand); the left hand is mirrored x -> -x.
    Shape directions: overall size, finger length, palm width (+ 7 small ones).
    It is independent of the open model, so fit tests check the fitter's maths
    against a model whose geometry the test fully knows.
    """
    from lagc_hand.handmodel.params import HandModelParams

    j = np.zeros((16, 3))
    # MCPs (index 1, middle 4, pinky 7, ring 10) and finger directions.
    bases = {1: (-0.092, 0.0, 0.026), 4: (-0.095, 0.0, 0.006), 10: (-0.090, 0.0, -0.013), 7: (-0.082, 0.0, -0.030)}
    lengths = {1: (0.040, 0.025, 0.020), 4: (0.045, 0.028, 0.022), 10: (0.042, 0.027, 0.021), 7: (0.033, 0.020, 0.018)}
    tips = {}
    for b, p in bases.items():
        pos = np.array(p)
        j[b] = pos
        l1, l2, l3 = lengths[b]
        j[b + 1] = pos + [-l1, 0, 0]
        j[b + 2] = pos + [-l1 - l2, 0, 0]
        tips[b + 2] = pos + [-l1 - l2 - l3, 0, 0]
    cmc = np.array([-0.025, -0.012, 0.022])
    d = np.array([-0.55, -0.25, 0.8])
    d /= np.linalg.norm(d)
    j[13], j[14], j[15] = cmc, cmc + 0.038 * d, cmc + 0.070 * d
    tips[15] = cmc + 0.095 * d
    tip_pts = np.stack([tips[p] for p in TIP_PARENTS])  # thumb, index, middle, ring, pinky
    v = np.concatenate([j, tip_pts])
    extra = np.array([[-0.05, -0.01, 0.02], [-0.05, -0.01, -0.02], [-0.05, 0.012, 0.0]])
    v = np.concatenate([v, extra])
    nv = len(v)
    weights = np.zeros((nv, 16))
    weights[np.arange(16), np.arange(16)] = 1.0
    weights[16 + np.arange(5), TIP_PARENTS] = 1.0
    weights[21:, 0] = 1.0
    jreg = np.zeros((16, nv))
    jreg[np.arange(16), np.arange(16)] = 1.0
    shapedirs = np.zeros((nv, 3, 10))
    shapedirs[:, :, 0] = 0.1 * v
    shapedirs[:, 0, 1] = 0.1 * np.minimum(v[:, 0] + 0.08, 0)  # longer fingers
    shapedirs[:, 2, 2] = 0.1 * v[:, 2]  # wider palm
    shapedirs[:, :, 3:] = np.random.default_rng(0).normal(scale=0.001, size=(nv, 3, 7))
    faces = np.array([[0, 1, 4], [0, 4, 10], [0, 10, 7], [0, 13, 1], [21, 22, 23]])
    if side == "left":
        v = v * [-1, 1, 1]
        shapedirs = shapedirs * np.array([-1, 1, 1])[None, :, None]
        faces = faces[:, ::-1]
    kt = np.stack([MANO_PARENTS, np.arange(16)])
    return HandModelParams(
        v_template=v, f=faces, weights=weights, J_regressor=jreg, kintree_table=kt, shapedirs=shapedirs,
        posedirs=np.zeros((nv, 3, 135)), hands_components=np.eye(45), hands_mean=np.zeros(45),
        tip_vertex_ids=np.arange(16, 21), side=side, model_id="test-skeleton-hand",
    ).validate().normalized()


def render_hands(hands, width=640, height=480, fov_deg=60.0):
    """Rasterise posed hand-model meshes with OpenCV (painter's algorithm, Lambert shading).

    hands: list of ``(HandModel, rotmats (16,3,3), transl (3,))``, camera frame.
    Returns ``(image (H,W,3) uint8 RGB, K (3,3), keypoints (n,21,3) camera frame)``.
    Good enough for MediaPipe to find the hands (skin tone on a plain background).
    """
    import cv2
    import torch

    from lagc_hand.placement import intrinsics_matrix

    K = intrinsics_matrix(width, height, fov_deg=fov_deg)
    img = np.full((height, width, 3), (60, 70, 80), np.uint8)
    tris, kps = [], []
    for model, R, t in hands:
        with torch.no_grad():
            o = model.forward_rotmat(torch.as_tensor(np.asarray(R)[None], dtype=torch.float32),
                                     transl=torch.as_tensor(np.asarray(t)[None], dtype=torch.float32))
        v = o.vertices[0].numpy().astype(np.float64)
        kps.append(o.keypoints[0].numpy())
        tv = v[model.faces.numpy()]
        n = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        c = tv.mean(1)
        shade = np.abs((n * c / np.linalg.norm(c, axis=1, keepdims=True)).sum(1))
        tris += [(c[i, 2], tv[i], shade[i]) for i in range(len(tv))]
    tris.sort(key=lambda x: -x[0])
    for _, tv, s in tris:
        p = tv[:, :2] / tv[:, 2:3] * K[0, 0] + K[:2, 2]
        col = (np.array([150, 180, 225]) * (0.35 + 0.65 * s)).tolist()
        cv2.fillConvexPoly(img, np.round(p * 16).astype(np.int32), col, lineType=cv2.LINE_AA, shift=4)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), K, np.stack(kps)


def palm_facing_camera(side: str) -> np.ndarray:
    """(16,3,3) rest pose turned so the open model's hand points up (-y) with the palm to the camera."""
    M = np.zeros((3, 3))
    if side == "right":  # model: fingers -x, palm -y, thumb +z
        M[:, 0], M[:, 1], M[:, 2] = [0, 1, 0], [0, 0, 1], [1, 0, 0]
    else:  # mirrored model: fingers +x, palm -y, thumb +z
        M[:, 0], M[:, 1], M[:, 2] = [0, -1, 0], [0, 0, 1], [-1, 0, 0]
    R = np.tile(np.eye(3), (16, 1, 1))
    R[0] = M
    return R
