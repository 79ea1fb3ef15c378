"""Synthetic two-hand motions for the add-on tests and the import benchmark.

numpy only (no bpy): a plausible right-hand skeleton, a closed mesh made of one
bipyramid per bone (each rigidly weighted to its joint, fingertips are real
mesh vertices), the left hand mirrored, and smooth random joint rotations.
:func:`forward_kinematics` is an independent MANO-style FK used to check what
Blender evaluates.  If the project's open hand model ``assets/open_hand_right.npz``
exists, :func:`make_motion` can use it instead of the bipyramids.
"""
from __future__ import annotations

import os

import numpy as np

from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core.rotations import axis_angle_to_quat, matrix_to_quat, quat_multiply, quat_to_matrix
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC, MANO_PARENTS, TIP_PARENTS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPEN_HAND = os.path.join(REPO, "assets", "open_hand_right.npz")


def right_skeleton() -> tuple[np.ndarray, np.ndarray]:
    """(16, 3) rest joints and (5, 3) fingertips of a right hand, metres.

    Same frame as the open hand model: fingers along -x, thumb towards +z,
    palm facing -y (built with fingers +y / thumb +x / palm -z, then mapped).
    """
    mcp = {"index": (0.025, 0.090, 0.0), "middle": (0.004, 0.095, 0.0),
           "ring": (-0.016, 0.090, 0.0), "pinky": (-0.034, 0.080, 0.0)}
    seg = (0.040, 0.025, 0.020)
    joints = np.zeros((16, 3))
    tips = np.zeros((5, 3))
    order = ["index", "middle", "pinky", "ring"]  # MANO order of fingers 1..12
    tip_slot = {"thumb": 0, "index": 1, "middle": 2, "ring": 3, "pinky": 4}
    for f, finger in enumerate(order):
        p = np.array(mcp[finger])
        for k in range(3):
            joints[1 + 3 * f + k] = p
            p = p + np.array([0.0, seg[k], 0.0])
        tips[tip_slot[finger]] = p
    d = np.array([0.6, 0.75, -0.28])
    d /= np.linalg.norm(d)
    p = np.array([0.022, 0.025, -0.01])
    for k, length in enumerate((0.035, 0.030, 0.025)):
        joints[13 + k] = p
        p = p + d * length
    tips[0] = p
    to_model = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    return joints @ to_model.T, tips @ to_model.T


def bipyramid_mesh(joints: np.ndarray, tips: np.ndarray):
    """Closed mesh: per joint bone a 6-vertex bipyramid from head to tail.

    Returns vertices (V, 3), faces (F, 3) int32, weights (V, 16), tip ids (5,).
    """
    tail = np.empty_like(joints)
    child = {0: 4, 1: 2, 2: 3, 4: 5, 5: 6, 7: 8, 8: 9, 10: 11, 11: 12, 13: 14, 14: 15}
    last_tip = {3: 1, 6: 2, 9: 4, 12: 3, 15: 0}
    tip_vertex = {}
    for j in range(16):
        tail[j] = joints[child[j]] if j in child else tips[last_tip[j]]
    verts, faces, weights = [], [], []
    for j in range(16):
        h, t = joints[j], tail[j]
        axis = t - h
        length = np.linalg.norm(axis)
        a = axis / length
        u = np.cross(a, [0.0, 0.0, 1.0])
        if np.linalg.norm(u) < 1e-6:
            u = np.cross(a, [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(a, u)
        r = 0.009 if j else 0.03
        mid = h + 0.5 * axis
        base = len(verts)
        verts += [h, t] + [mid + r * (np.cos(k * np.pi / 2) * u + np.sin(k * np.pi / 2) * v) for k in range(4)]
        for k in range(4):
            a_, b_ = base + 2 + k, base + 2 + (k + 1) % 4
            faces += [(base, b_, a_), (base + 1, a_, b_)]
        w = np.zeros(16)
        w[j] = 1.0
        weights += [w] * 6
        if j in last_tip:
            tip_vertex[last_tip[j]] = base + 1
    verts = np.asarray(verts)
    faces = np.asarray(faces, dtype=np.int32)
    tip_ids = np.array([tip_vertex[i] for i in range(5)], dtype=np.int64)
    return verts, faces, np.asarray(weights, dtype=np.float32), tip_ids


def forward_kinematics(quats: np.ndarray, root: np.ndarray, rest_joints: np.ndarray,
                       rest_tips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO FK.  quats (T, 16, 4), root (T, 3), rest joints (16, 3), tips (5, 3).

    Returns posed (T, 21, 3) MANO-21 points (camera frame) and the joints'
    world rotations (T, 16, 3, 3).
    """
    R = quat_to_matrix(quats)
    T = quats.shape[0]
    A = np.zeros((T, 16, 3, 3))
    P = np.zeros((T, 21, 3))
    A[:, 0] = R[:, 0]
    P[:, 0] = root
    for k in range(1, 16):
        p = MANO_PARENTS[k]
        A[:, k] = A[:, p] @ R[:, k]
        P[:, k] = P[:, p] + np.einsum("tij,j->ti", A[:, p], rest_joints[k] - rest_joints[p])
    for i in range(5):
        p = TIP_PARENTS[i]
        P[:, 16 + i] = P[:, p] + np.einsum("tij,j->ti", A[:, p], rest_tips[i] - rest_joints[p])
    return P, A


def _smooth_quats(rng, T: int, amplitude: float, base: np.ndarray | None = None) -> np.ndarray:
    t = np.arange(T)[:, None, None]
    freq = rng.uniform(0.02, 0.12, size=(1, 16, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 16, 3))
    amp = rng.uniform(0.3, 1.0, size=(1, 16, 3)) * amplitude
    rotvec = amp * np.sin(freq * t + phase)
    q = axis_angle_to_quat(rotvec)
    if base is not None:
        q[:, 0] = quat_multiply(base[None], q[:, 0])
    return q


def make_hand(side: str, T: int, rng, rest, present: np.ndarray, offset_x: float) -> hm.HandTrackMotion:
    joints, tips, verts, tip_ids = rest
    # Fingers up in the image (camera -y) and the palm (rest -y) towards the camera
    # (camera -z); the left hand's rest frame is mirrored in x.
    s = 1.0 if side == "right" else -1.0
    ex, ey, ez = np.eye(3)
    base = matrix_to_quat(np.stack([s * ey, ez, s * ex], axis=1))
    variants = {}
    for name, amp in (("raw", 0.45), ("clean", 0.35)):
        q = _smooth_quats(rng, T, amp, base).astype(np.float32)
        root = np.stack([offset_x + 0.03 * np.sin(np.arange(T) * 0.05),
                         0.05 + 0.02 * np.cos(np.arange(T) * 0.07),
                         0.55 + 0.05 * np.sin(np.arange(T) * 0.03)], axis=1).astype(np.float32)
        q64 = q.astype(np.float64)
        posed, _ = forward_kinematics(q64, root.astype(np.float64), joints, tips)
        kp = posed[:, MANO21_TO_PUBLIC].astype(np.float32)
        absent = ~present
        q[absent] = (1.0, 0.0, 0.0, 0.0)
        kp[absent] = 0.0
        variants[name] = hm.HandVariant(quats=q, root=root, keypoints3d=kp)
    conf = rng.uniform(0.2, 1.0, size=T).astype(np.float32)
    conf[~present] = 0.0
    return hm.HandTrackMotion(
        side=side, present=present, confidence=conf,
        keypoints2d=np.zeros((T, 21, 2), np.float32), betas=np.zeros(10, np.float32),
        rest_vertices=verts.astype(np.float32), rest_joints=joints.astype(np.float32),
        tip_vertex_ids=tip_ids, raw=variants["raw"], clean=variants["clean"])


def make_motion(T: int = 40, seed: int = 0, stride: int = 1, fps: float = 30.0,
                use_open_hand: bool = False, image_size=(640, 480)) -> hm.HandMotion:
    """Two hands over ``T`` samples.  The right hand is absent on samples
    10..14 (a gap), the left hand on samples 0..2 (enters late)."""
    rng = np.random.default_rng(seed)
    joints, tips = right_skeleton()
    verts, faces, weights, tip_ids = bipyramid_mesh(joints, tips)
    if use_open_hand and os.path.exists(OPEN_HAND):
        with np.load(OPEN_HAND, allow_pickle=False) as z:
            verts = z["v_template"].astype(np.float64)
            faces = z["f"].astype(np.int32)
            weights = z["weights"].astype(np.float32)
            joints = z["J_regressor"] @ verts
            tip_ids = np.asarray(z["tip_vertex_ids"] if "tip_vertex_ids" in z.files else [745, 317, 444, 556, 673])
            tips = verts[tip_ids]
    right_rest = (joints, tips, verts, tip_ids)
    mirror = np.array([-1.0, 1.0, 1.0])
    left_rest = (joints * mirror, tips * mirror, verts * mirror, tip_ids)
    pr = np.ones(T, bool)
    pr[10:15] = False
    pl = np.ones(T, bool)
    pl[:3] = False
    hands = {"right": make_hand("right", T, rng, right_rest, pr, 0.08),
             "left": make_hand("left", T, rng, left_rest, pl, -0.08)}
    w, h = image_size
    K = np.array([[700.0, 0, w / 2 + 12.0], [0, 700.0, h / 2 - 7.0], [0, 0, 1]])
    frames = np.arange(T, dtype=np.int64) * stride + 5
    return hm.HandMotion(
        fps=fps / stride, frames=frames, times=frames / fps, image_size=(w, h), intrinsics=K,
        faces=faces, skin_weights=weights, hand_model="synthetic-bipyramids",
        hands=hands, meta={"engine": "synthetic"}).validate()


def always_present_motion(T: int, seed: int, frames: np.ndarray, fps: float, focal: float) -> hm.HandMotion:
    """Both bipyramid hands present on every frame, 640x480 with focal ``focal`` px.

    frames: (T,) source frame numbers; ``times = frames / (fps * step)`` where
    ``step`` is the source-frame stride, so strided motions keep true seconds.
    """
    rng = np.random.default_rng(seed)
    joints, tips = right_skeleton()
    verts, faces, weights, tip_ids = bipyramid_mesh(joints, tips)
    mirror = np.array([-1.0, 1.0, 1.0])
    rests = {"right": (joints, tips, verts, tip_ids), "left": (joints * mirror, tips * mirror, verts * mirror, tip_ids)}
    hands = {s: make_hand(s, T, rng, rests[s], np.ones(T, bool), 0.08 if s == "right" else -0.08)
             for s in hm.SIDES}
    K = np.array([[focal, 0, 320.0], [0, focal, 240.0], [0, 0, 1]])
    step = float(np.median(np.diff(frames))) if len(frames) > 1 else 1.0
    return hm.HandMotion(fps=fps, frames=frames, times=frames / (fps * step), image_size=(640, 480), intrinsics=K,
                         faces=faces, skin_weights=weights, hand_model="synthetic", hands=hands).validate()


def hide(hand: hm.HandTrackMotion, frames: slice) -> None:
    """In place: the hand is absent over ``frames`` (samples), as a HandMotion stores
    an absent hand (no confidence, identity rotations, zero keypoints)."""
    hand.present[frames] = False
    hand.confidence[frames] = 0.0
    for v in (hand.raw, hand.clean):
        v.quats[frames] = (1, 0, 0, 0)
        v.keypoints3d[frames] = 0
