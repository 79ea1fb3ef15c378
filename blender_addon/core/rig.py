"""Numpy-only maths of the Blender rig: bone layout, rest frames, key conversion.

Nothing here imports ``bpy``; the scene writer (``blender/scene.py``) feeds the
results to Blender, and the tests check them against Blender's own evaluation.

Frames
------
*Rest-model frame*: the hand model's own frame (metres), the frame of a
HandMotion's ``rest_vertices`` / ``rest_joints``.  The armature is built in it:
armature space == rest-model frame at rest.

*Camera frame*: OpenCV (x right, y down, z forward), metres.  The armature
object sits, with an identity transform, inside an empty that maps the camera
frame to Blender's world, so posed armature space == camera frame.

Bones (21 per hand, order of :data:`BONE_NAMES`): the 16 MANO joints (MANO
order) then the 5 fingertip bones (thumb, index, middle, ring, pinky).
A joint bone's head is its joint; its tail is the child joint (the wrist
points at the middle-finger MCP, the last joint of a finger at the fingertip
vertex).  Tip bones start at the fingertip vertex and carry no weights: they
are end sites for IK targets and for BVH export.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The camera maths lives in .camera; re-exported for the scene writer's callers.
from .camera import CameraParams, camera_params  # noqa: F401
from .rotations import matrix_to_quat, quat_conjugate, quat_multiply, quat_normalize, quat_sign_continuity
from .skeleton import MANO_JOINT_NAMES, MANO_PARENTS, NUM_JOINTS, TIP_NAMES, TIP_PARENTS

#: Blender suffix of each side (Blender's mirror tools pair ``.L`` / ``.R``).
SIDE_SUFFIX = {"left": "L", "right": "R"}

#: Base names of the 21 bones (16 joints in MANO order, then the 5 tips).
BONE_NAMES = tuple(MANO_JOINT_NAMES) + tuple(TIP_NAMES)
NUM_BONES = len(BONE_NAMES)

#: Parent bone index of each of the 21 bones (-1 for the wrist).
BONE_PARENTS = np.concatenate([MANO_PARENTS, TIP_PARENTS]).astype(np.int64)

#: MANO joint whose bone points at each joint bone's tail (its child); the last
#: joint of each finger points at a fingertip (negative: ``-1 - tip index``).
_TAIL_TARGET = np.array(
    [4, 2, 3, -2, 5, 6, -3, 8, 9, -5, 11, 12, -4, 14, 15, -1], dtype=np.int64
)

#: Shortest bone Blender keeps (it deletes zero-length bones), metres.
MIN_BONE_LENGTH = 1e-3


def bone_names(side: str) -> list[str]:
    """The 21 Blender bone names of one hand, e.g. ``"index1.L"``."""
    suffix = SIDE_SUFFIX[side]
    return [f"{name}.{suffix}" for name in BONE_NAMES]


@dataclass
class BoneLayout:
    """Rest layout of one hand's 21 bones in the rest-model frame (metres).

    heads:   (21, 3) bone heads.
    tails:   (21, 3) bone tails.
    z_axes:  (21, 3) unit vectors the bones' local +Z should point along
             (the back of the hand), orthogonal to the bone; fixes the roll.
    parents: (21,) parent bone index, -1 for the root.
    names:   21 Blender bone names.
    """

    heads: np.ndarray
    tails: np.ndarray
    z_axes: np.ndarray
    parents: np.ndarray
    names: list[str]

    def rest_matrices(self) -> np.ndarray:
        """(21, 3, 3) rest orientation of each bone: columns are the bone's local
        x, y (along the bone), z axes in the rest-model frame."""
        y = _unit(self.tails - self.heads)
        z = _unit(self.z_axes - np.sum(self.z_axes * y, axis=-1, keepdims=True) * y)
        x = np.cross(y, z)
        return np.stack([x, y, z], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def back_of_hand_normal(rest_joints: np.ndarray, side: str) -> np.ndarray:
    """(3,) unit normal of the palm plane pointing out of the back of the hand.

    The palm plane runs through the wrist and the index / pinky MCPs; the
    cross product's orientation flips between mirrored hands, hence ``side``.
    (Checked on the open model's right hand: fingers -x, thumb +z, palm -y
    gives +y.)
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    n = np.cross(j[7] - j[0], j[1] - j[0])
    n = n if side == "right" else -n
    return _unit(n)


def bone_layout(
    rest_joints: np.ndarray, rest_vertices: np.ndarray, tip_vertex_ids: np.ndarray, side: str
) -> BoneLayout:
    """Bone heads, tails and roll axes of one hand (see the module docstring).

    rest_joints (16, 3), rest_vertices (V, 3): rest-model frame, metres.
    tip_vertex_ids (5,): fingertip vertices (thumb, index, middle, ring, pinky).
    """
    joints = np.asarray(rest_joints, dtype=np.float64)
    tips = np.asarray(rest_vertices, dtype=np.float64)[np.asarray(tip_vertex_ids, dtype=np.int64)]
    heads = np.concatenate([joints, tips], axis=0)
    tails = np.empty_like(heads)
    for k in range(NUM_JOINTS):
        t = _TAIL_TARGET[k]
        tails[k] = joints[t] if t >= 0 else tips[-1 - t]
    # A tip bone continues its parent's direction for half the parent's length.
    for i in range(5):
        k = NUM_JOINTS + i
        p = TIP_PARENTS[i]
        d = tails[p] - heads[p]
        tails[k] = heads[k] + 0.5 * d
    # Degenerate bones (coincident joints in a bad model) get a short bone along +Y
    # rather than vanishing: Blender silently deletes zero-length bones.
    length = np.linalg.norm(tails - heads, axis=-1)
    short = length < MIN_BONE_LENGTH
    if np.any(short):
        tails[short] = heads[short] + np.array([0.0, MIN_BONE_LENGTH * 10, 0.0])
    normal = back_of_hand_normal(joints, side)
    z_axes = np.repeat(normal[None], NUM_BONES, axis=0)
    # When a bone runs along the normal (never in a sane hand), any other axis will do.
    y = _unit(tails - heads)
    bad = np.abs(np.sum(y * z_axes, axis=-1)) > 0.99
    z_axes[bad] = np.cross(y[bad], [1.0, 0.0, 0.0])
    return BoneLayout(heads, tails, z_axes, BONE_PARENTS.copy(), bone_names(side))


def motion_to_bone_quats(quats: np.ndarray, rest_rot: np.ndarray) -> np.ndarray:
    """MANO-semantics joint rotations -> Blender pose-bone ``rotation_quaternion``.

    quats:    (T, 16, 4) w-x-y-z; joint 0 maps the rest-model frame to the camera
              frame, joints 1..15 are parent-relative, expressed in the rest-model frame.
    rest_rot: (16, 3, 3) each bone's rest orientation in armature space
              (``Bone.matrix_local`` rotation).
    returns:  (T, 16, 4) float64 ``R_rest^-1 q R_rest`` per bone, sign-continuous in time.

    Why the conjugation: Blender applies a pose bone's rotation in the bone's own
    rest frame, and armature space equals the rest-model frame, so a rotation
    ``q`` expressed in the model frame becomes ``R_rest^-1 q R_rest`` in the bone
    frame.  For joint 0 this also holds because the armature object carries no
    rotation of its own inside the camera-frame empty.
    """
    q_rest = matrix_to_quat(np.asarray(rest_rot, dtype=np.float64))
    q = quat_multiply(quat_conjugate(q_rest)[None], quat_multiply(np.asarray(quats, np.float64), q_rest[None]))
    return quat_sign_continuity(quat_normalize(q))


def bone_quats_to_motion(bone_quats: np.ndarray, rest_rot: np.ndarray) -> np.ndarray:
    """Inverse of :func:`motion_to_bone_quats` (sign not normalised)."""
    q_rest = matrix_to_quat(np.asarray(rest_rot, dtype=np.float64))
    return quat_multiply(q_rest[None], quat_multiply(np.asarray(bone_quats, np.float64), quat_conjugate(q_rest)[None]))


def root_to_bone_location(root: np.ndarray, rest_rot0: np.ndarray, rest_head0: np.ndarray) -> np.ndarray:
    """Wrist positions in the camera frame -> the wrist pose bone's ``location``.

    root:       (T, 3) wrist positions, camera frame, metres.
    rest_rot0:  (3, 3) wrist bone rest orientation (armature space).
    rest_head0: (3,) wrist bone rest head (armature space == rest-model frame).
    returns:    (T, 3) float64 translation in the wrist bone's rest frame.
    """
    d = np.asarray(root, dtype=np.float64) - np.asarray(rest_head0, dtype=np.float64)[None]
    return d @ np.asarray(rest_rot0, dtype=np.float64)


def change_points(mask: np.ndarray) -> np.ndarray:
    """Indices where a boolean (T,) series changes value, always including 0.

    Used for visibility keys: constant keys at change points are all the
    timeline needs, and they stay readable for the animator.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.nonzero(mask[1:] != mask[:-1])[0] + 1]).astype(np.int64)


def fix_winding(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces (F, 3) wound so that a closed mesh has positive signed volume
    (normals outward).  A mirrored left hand sharing the right hand's faces
    would otherwise render inside out."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if f.size == 0:
        return f.astype(np.int32)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    volume = np.sum(np.einsum("ij,ij->i", a, np.cross(b, c))) / 6.0
    return (f[:, ::-1] if volume < 0 else f).astype(np.int32)


def source_fps(fps: float, frames: np.ndarray) -> float:
    """Frame rate of the source video from the samples' rate and their frame step
    (a stride of ``s`` gives samples at ``fps = source / s``)."""
    frames = np.asarray(frames)
    if frames.size < 2:
        return float(fps)
    step = float(np.median(np.diff(frames)))
    return float(fps) * max(step, 1.0)


def blender_fps(fps: float) -> tuple[int, float]:
    """``(render.fps, render.fps_base)`` for a possibly fractional rate (29.97 -> 30, 1.001)."""
    base_fps = max(1, int(round(fps)))
    return base_fps, base_fps / float(fps)
