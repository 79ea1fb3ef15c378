"""The choreography of the bundled sample clip ``assets/samples/two_hands.mp4``.

Both hands face the camera like a person in front of it (the right hand on
the image's left), 640x480, 30 fps, 4 s:

* 0.0-0.7 s  open hands, apart, fingers waving a little;
* 0.7-1.3 s  the right hand closes to a fist, the left points, both approach;
* 1.3-2.3 s  both open and tilt inwards until the index and thumb tips touch
  (a "steeple"), held;
* 2.3-4.0 s  they part and cross: the right hand passes in front of the left
  to the image's right, the left behind it to the image's left.

Keyframes give anatomical angles (see :mod:`lagc_hand.handmodel.poses`),
an in-camera tilt and a position for the right hand; the left hand is
designed as the mirror image with its own finger angles, then both are
interpolated with ease-in/out (rotations by slerp).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from lagc_hand.handmodel.params import HandModelParams
from lagc_hand.handmodel.poses import fist_angles, pose_from_angles, relaxed_angles
from lagc_hand.synth.clip import HandTrack
from lagc_hand.synth.scene import CameraIntrinsics

WIDTH, HEIGHT, FPS, SECONDS, HFOV_DEG = 640, 480, 30.0, 4.0, 60.0

#: Model -> camera rotation with the palm to the camera and the fingers up (right hand).
PALM_TO_CAMERA_RIGHT = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: Mirror of the camera frame across its y-z plane.
MIRROR = np.diag([-1.0, 1.0, 1.0])


@dataclass
class Key:
    """A keyframe of one hand: time (s), finger angles, camera-frame tilt
    (roll about the view axis, yaw about the image vertical, pitch about the
    image horizontal; degrees) and wrist position (metres, camera frame)."""

    t: float
    flex: np.ndarray
    spread: np.ndarray
    opposition: float
    tilt: tuple = (0.0, 0.0, 0.0)
    pos: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def _angles(kind: str):
    flat = (np.zeros((5, 3)), np.array([0.15, 0.05, 0.0, -0.05, -0.10]), 0.0)
    if kind == "flat":
        return flat
    if kind == "relaxed":
        return relaxed_angles()
    if kind == "fist":
        return fist_angles()
    if kind == "point":  # index straight, others curled
        flex, spread, opp = fist_angles()
        flex = flex.copy()
        flex[1] = [0.05, 0.05, 0.0]
        return flex, spread, opp
    if kind == "steeple":  # straight fingers, thumb out, a little curl
        return (np.array([[0.0, 0.1, 0.1], [0.15, 0.15, 0.1], [0.2, 0.2, 0.1], [0.25, 0.25, 0.1], [0.3, 0.3, 0.15]]),
                np.array([0.35, 0.09, 0.0, -0.02, -0.05]), -0.15)
    if kind == "wave":
        flex, spread, opp = flat
        return flex + np.array([[0, 0, 0], [0.25, 0.2, 0.1], [0.1, 0.1, 0.05], [0.3, 0.25, 0.1], [0.15, 0.1, 0.05]]), spread, opp
    raise ValueError(kind)


def _rot(tilt) -> np.ndarray:
    roll, yaw, pitch = np.radians(tilt)
    return Rotation.from_euler("zyx", [roll, yaw, pitch]).as_matrix()


def _ease(u: np.ndarray) -> np.ndarray:
    return u * u * (3 - 2 * u)


def _interpolate(keys: list[Key], times: np.ndarray, side: str, params: HandModelParams):
    """Per-frame (global_orient, hand_pose, transl) for one hand from its keys."""
    kt = np.array([k.t for k in keys])
    idx = np.clip(np.searchsorted(kt, times, side="right") - 1, 0, len(keys) - 2)
    u = np.clip((times - kt[idx]) / (kt[idx + 1] - kt[idx]), 0.0, 1.0)
    w = _ease(u)
    base = PALM_TO_CAMERA_RIGHT if side == "right" else MIRROR @ PALM_TO_CAMERA_RIGHT @ MIRROR
    mats = []
    for k in keys:
        r = _rot(k.tilt)
        if side == "left":
            r = MIRROR @ r @ MIRROR
        mats.append(r @ base)
    rots = Rotation.from_matrix(np.stack(mats))
    glob = np.zeros((len(times), 3))
    for i in range(len(keys) - 1):
        sel = idx == i
        if sel.any():
            glob[sel] = Slerp([0.0, 1.0], rots[i:i + 2])(w[sel]).as_rotvec()

    def lerp(get):
        a = np.stack([np.asarray(get(k), float) for k in keys])
        return a[idx] * (1 - w)[(...,) + (None,) * (a.ndim - 1)] + a[idx + 1] * w[(...,) + (None,) * (a.ndim - 1)]

    flex = lerp(lambda k: k.flex)
    spread = lerp(lambda k: k.spread)
    opp = lerp(lambda k: k.opposition)
    pos = lerp(lambda k: k.pos)
    joints = params.rest_joints()
    hand_pose = pose_from_angles(joints, side, flex, spread, opp)
    return glob, hand_pose, pos


def _key(t, kind, tilt=(0, 0, 0), pos=(0, 0, 0.5)):
    flex, spread, opp = _angles(kind)
    return Key(t, np.asarray(flex, float), np.asarray(spread, float), float(opp), tuple(tilt), np.asarray(pos, float))


def _steeple_x(params_r: HandModelParams, tilt, pos, gap: float = 0.002) -> float:
    """x of the right wrist that puts its index tip ``gap/2`` left of the mirror plane."""
    import torch

    from lagc_hand.handmodel.layer import HandModel

    flex, spread, opp = _angles("steeple")
    pose = pose_from_angles(params_r.rest_joints(), "right", flex, spread, opp)
    r = _rot(tilt) @ PALM_TO_CAMERA_RIGHT
    with torch.no_grad():
        out = HandModel(params_r)(torch.as_tensor(Rotation.from_matrix(r).as_rotvec(), dtype=torch.float32)[None],
                                  torch.as_tensor(pose, dtype=torch.float32)[None],
                                  transl=torch.as_tensor(pos, dtype=torch.float32)[None])
    tips = out.keypoints[0, [4, 8]].numpy()  # thumb and index tips
    return float(pos[0] - gap / 2 - tips[:, 0].max())


def sample_tracks(right: HandModelParams, left: HandModelParams, fps: float = FPS,
                  seconds: float = SECONDS) -> tuple[list[HandTrack], CameraIntrinsics]:
    """The sample clip's two :class:`HandTrack` and its camera."""
    cam = CameraIntrinsics.from_fov(WIDTH, HEIGHT, HFOV_DEG)
    steeple_tilt = (32.0, -12.0, 8.0)
    sx = _steeple_x(right, steeple_tilt, np.array([0.0, 0.07, 0.48]))
    # right hand keys (camera frame); the left hand mirrors position and tilt
    r_keys = [
        _key(0.00, "wave", (-5, 10, 0), (-0.15, 0.06, 0.52)),
        _key(0.35, "flat", (0, 15, 5), (-0.14, 0.05, 0.52)),
        _key(0.70, "relaxed", (5, 10, 0), (-0.13, 0.06, 0.50)),
        _key(1.10, "fist", (10, 0, -10), (-0.10, 0.07, 0.50)),
        _key(1.50, "steeple", (25, -8, 5), (sx - 0.03, 0.07, 0.48)),
        _key(1.85, "steeple", steeple_tilt, (sx, 0.07, 0.48)),
        _key(2.30, "steeple", steeple_tilt, (sx, 0.07, 0.48)),
        _key(2.60, "relaxed", (20, 10, 0), (sx - 0.01, 0.07, 0.45)),
        _key(3.00, "relaxed", (10, 20, 0), (-0.03, 0.06, 0.44)),
        _key(3.45, "wave", (0, 25, 0), (0.06, 0.05, 0.44)),
        _key(4.00, "flat", (-10, 20, 0), (0.15, 0.06, 0.44)),
    ]
    # left: same timing, its own finger angles and depth (first back off, then pass behind)
    l_kinds = ["flat", "wave", "relaxed", "point", "steeple", "steeple", "steeple", "relaxed", "relaxed", "flat", "wave"]
    l_depth = [0.52, 0.52, 0.50, 0.50, 0.48, 0.48, 0.48, 0.53, 0.56, 0.58, 0.60]
    l_x = [0.15, 0.14, 0.13, 0.10, None, None, None, None, 0.04, -0.06, -0.16]
    l_keys = []
    for k, kind, z, x in zip(r_keys, l_kinds, l_depth, l_x):
        pos = k.pos.copy()
        pos[0] = -pos[0] if x is None else x
        pos[2] = z
        nk = _key(k.t, kind, k.tilt, pos)
        l_keys.append(nk)
    times = np.arange(int(round(seconds * fps))) / fps
    tracks = []
    for side, params, keys in (("left", left, l_keys), ("right", right, r_keys)):
        glob, pose, tr = _interpolate(keys, times, side, params)
        # keys give the wrist position; the layer's transl is added to the wrist joint's rest position
        tr = tr - params.rest_joints()[0]
        tracks.append(HandTrack(side, params, glob, pose, tr))
    return tracks, cam
