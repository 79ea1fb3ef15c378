"""Retarget a LAGC hand armature's animation onto another rig (Rigify metarig or
generated rig, Mixamo, or any rig through a name-map JSON), baked into the
target's own action.

Method (all rotations are world-space 3x3; rest = ``bone.matrix_local``):

* ``G``: the rotation taking the source's rest hand frame onto the target's
  (frames built from the wrist and the index / middle / pinky finger bases:
  x along wrist -> middle base, y the palm normal), so the two hands' palms
  coincide whatever the bones' rolls and the rigs' orientations.
* A finger bone's motion relative to its hand, ``E = H_s0 (H_s^-1 W_s)(H_s0^-1 W_s0)^-1 H_s0^-1``,
  mapped through ``G`` and applied to the target bone's rest turned to point
  where the source bone pointed at rest (``A``: shortest arc from the
  target's rest direction to ``G`` times the source's), then carried by the
  target hand's current pose ``H_t H_t0^-1``:
  ``W_t = H_t H_t0^-1 G E G^-1 A W_t0``.
  Working in world space makes bone roll irrelevant, and ``A`` removes the
  rest-pose difference (a relaxed, curled target rest pose straightens where
  the source's rest is flat), so fingers curl about the right axes.
* Wrist (optional, ``wrist="DELTA"``): the source wrist's rotation from its
  rest, mapped through ``G``, applied to the target hand's rest.

Constraints and drivers of the target are respected because each bone is
posed through ``PoseBone.matrix`` after its parents were evaluated (one
depsgraph update per hierarchy level per frame); the resulting local
rotations are collected and written at the end as bulk keys (compat layer).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..core import rig as core_rig
from ..core.rotations import quat_sign_continuity
from . import compat
from .hand import SIDE_PROP

#: LAGC base bone names that retargeting maps (wrist + 15 finger joints).
JOINTS = ("wrist", "thumb1", "thumb2", "thumb3", "index1", "index2", "index3", "middle1", "middle2", "middle3",
          "ring1", "ring2", "ring3", "pinky1", "pinky2", "pinky3")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")


class RetargetError(RuntimeError):
    """The rigs cannot be matched (message is for the user)."""


@dataclass
class BoneMap:
    """``bones``: LAGC base name -> target bone name (missing joints are skipped).
    ``hand_reference``: target bone whose evaluated pose is the hand's frame
    (defaults to the wrist's target); ``kind``: how the map was found."""

    bones: dict
    hand_reference: str = ""
    kind: str = "custom"
    notes: list = field(default_factory=list)


# --------------------------------------------------------------------------- maps


def _side_words(side: str) -> tuple[str, str]:
    return ("R", "Right") if side == "right" else ("L", "Left")


def rigify_map(target, side: str) -> BoneMap | None:
    s, _ = _side_words(side)
    names = target.data.bones
    if f"f_index.01.{s}" not in names:
        return None
    bones = {"wrist": f"hand.{s}"}
    for f in FINGERS:
        base = "thumb" if f == "thumb" else f"f_{f}"
        for k in (1, 2, 3):
            bones[f"{f}{k}"] = f"{base}.0{k}.{s}"
    if f"ORG-hand.{s}" in names:  # a generated rig: drive the IK hand control, measure the real hand
        bones["wrist"] = f"hand_ik.{s}" if f"hand_ik.{s}" in names else f"hand_fk.{s}"
        return BoneMap(bones, f"ORG-hand.{s}", "rigify")
    return BoneMap(bones, f"hand.{s}", "rigify-metarig")


def mixamo_map(target, side: str) -> BoneMap | None:
    _, word = _side_words(side)
    names = list(target.data.bones.keys())
    hand = [n for n in names if n.endswith(f"{word}Hand")]
    if not hand:
        return None
    prefix = hand[0][: -len(f"{word}Hand")]
    bones = {"wrist": f"{prefix}{word}Hand"}
    for f in FINGERS:
        for k in (1, 2, 3):
            bones[f"{f}{k}"] = f"{prefix}{word}Hand{f.capitalize()}{k}"
    return BoneMap(bones, bones["wrist"], "mixamo")


def load_name_map(path: str, side: str) -> BoneMap:
    """A JSON name map: ``{"wrist": "...", "index1": "...", ...}``, or per side
    ``{"left": {...}, "right": {...}}``; an optional ``"hand_reference"`` names
    the bone whose pose is the hand frame."""
    try:
        with open(bpy.path.abspath(path), "r", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise RetargetError(f"cannot read the name map {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RetargetError(f"the name map {path} must be a JSON object")
    if side in data and isinstance(data[side], dict):
        data = data[side]
    ref = data.pop("hand_reference", "")
    unknown = [k for k in data if k not in JOINTS]
    if unknown:
        raise RetargetError(f"the name map {path} names unknown joints {unknown}; use {', '.join(JOINTS)}")
    if "wrist" not in data:
        raise RetargetError(f"the name map {path} must map 'wrist'")
    return BoneMap(dict(data), ref or data["wrist"], "name-map")


def find_map(target, side: str, name_map: str | None = None) -> BoneMap:
    """The bone map for ``target``: a name-map file if given, else Rigify or Mixamo by bone names."""
    if name_map:
        bm = load_name_map(name_map, side)
    else:
        bm = rigify_map(target, side) or mixamo_map(target, side)
        if bm is None:
            raise RetargetError(f"{target.name}: no Rigify or Mixamo hand bones found for the {side} hand; "
                                "give a name-map JSON")
    present = {k: v for k, v in bm.bones.items() if v in target.data.bones}
    missing = sorted(set(bm.bones) - set(present))
    if "wrist" not in present or bm.hand_reference not in target.data.bones:
        raise RetargetError(f"{target.name}: the hand bone {bm.bones.get('wrist')!r} is not in the rig")
    if not any(k.endswith("1") for k in present):
        raise RetargetError(f"{target.name}: none of the finger bones of the map are in the rig")
    if missing:
        bm.notes.append(f"not in the rig, skipped: {', '.join(missing)}")
    bm.bones = present
    return bm


# --------------------------------------------------------------------------- maths


def _rot(m) -> np.ndarray:
    a = np.array(m, np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(a)  # strip object scale
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def hand_frame(wrist, index, middle, pinky) -> np.ndarray:
    """(3, 3) columns: wrist->middle base, palm normal, their cross."""
    e1 = np.asarray(middle, float) - np.asarray(wrist, float)
    e1 /= np.linalg.norm(e1)
    n = np.cross(np.asarray(index, float) - wrist, np.asarray(pinky, float) - wrist)
    n -= np.dot(n, e1) * e1
    n /= np.linalg.norm(n)
    return np.stack([e1, n, np.cross(e1, n)], axis=1)


def shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) rotation by the smallest angle taking direction ``a`` to ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -0.999999:
        axis = np.cross(a, [1.0, 0, 0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


# --------------------------------------------------------------------------- retarget


@dataclass
class RetargetResult:
    action: object
    frames: np.ndarray
    bones: dict
    kind: str
    notes: list


def _world_heads_rest(obj, names) -> dict:
    mw = np.array(obj.matrix_world)
    return {n: (mw @ np.append(np.array(obj.data.bones[n].head_local), 1.0))[:3] for n in names}


def _landmarks(names: dict) -> tuple[str, str, str, str]:
    return names["wrist"], names["index1"], names["middle1"], names["pinky1"]


def _depth(bone) -> int:
    d = 0
    while bone.parent is not None:
        bone = bone.parent
        d += 1
    return d


def _check_request(source, target, frame_start: int, frame_end: int, wrist: str) -> str:
    """Validate the retarget request; returns the source hand's side ("left"/"right")."""
    side = source.get(SIDE_PROP)
    if source.type != 'ARMATURE' or side not in ("left", "right"):
        raise RetargetError(f"{source.name!r} is not a LAGC-Hand armature")
    if target.type != 'ARMATURE' or target == source:
        raise RetargetError("choose another armature as the target rig")
    if frame_end < frame_start:
        raise RetargetError(f"the frame range {frame_start}..{frame_end} is empty")
    if wrist not in ("NONE", "DELTA"):
        raise RetargetError(f"wrist must be NONE or DELTA, not {wrist!r}")
    return side


@dataclass
class _Rest:
    """Rest-pose quantities of a source/target pair (all rotations world-space (3, 3)).

    ``src_names`` / ``tgt``: LAGC base name -> source / target bone name;
    ``G``: source rest hand frame -> target rest hand frame; ``smw`` / ``tmw``:
    the armatures' object rotations (scale stripped); ``W_s0`` / ``W_t0``: bones'
    rest rotations; ``H_s0``: source wrist rest; ``H_t0_ref``: target hand
    reference bone rest; ``A``: per finger, shortest arc aligning the target rest
    direction with the mapped source one; ``fingers``: mapped finger keys sorted
    by depth; ``levels``: depth -> finger keys (posed level by level)."""

    src_names: dict
    tgt: dict
    G: np.ndarray
    smw: np.ndarray
    tmw: np.ndarray
    W_s0: dict
    W_t0: dict
    H_s0: np.ndarray
    H_t0_ref: np.ndarray
    A: dict
    fingers: list
    levels: dict


def _rest_alignment(source, target, side: str, bm: BoneMap) -> _Rest:
    """Match the two rigs at rest: hand frames, rest rotations and per-bone alignment arcs."""
    suffix = core_rig.SIDE_SUFFIX[side]
    src_names = {k: f"{k}.{suffix}" for k in JOINTS}
    tgt = dict(bm.bones)
    if bm.hand_reference != tgt["wrist"]:
        # Landmarks come from the reference hand bone (the control may sit elsewhere).
        tgt_land = dict(tgt, wrist=bm.hand_reference)
    else:
        tgt_land = tgt
    sw = _world_heads_rest(source, [src_names[k] for k in ("wrist", "index1", "middle1", "pinky1")])
    tw = _world_heads_rest(target, list(_landmarks(tgt_land)))
    F_s = hand_frame(*(sw[src_names[k]] for k in ("wrist", "index1", "middle1", "pinky1")))
    F_t = hand_frame(*(tw[n] for n in _landmarks(tgt_land)))
    G = F_t @ F_s.T

    smw, tmw = _rot(source.matrix_world), _rot(target.matrix_world)
    W_s0 = {k: smw @ _rot(source.data.bones[src_names[k]].matrix_local) for k in JOINTS}
    W_t0 = {k: tmw @ _rot(target.data.bones[n].matrix_local) for k, n in tgt.items()}
    H_s0 = W_s0["wrist"]
    H_t0_ref = tmw @ _rot(target.data.bones[bm.hand_reference].matrix_local)
    # Rest alignment: turn each target bone to point where the (mapped) source bone points at rest.
    A = {k: shortest_arc(W_t0[k][:, 1], G @ W_s0[k][:, 1]) for k in tgt if k != "wrist"}
    fingers = sorted((k for k in tgt if k != "wrist"), key=lambda k: _depth(target.data.bones[tgt[k]]))
    levels: dict[int, list] = {}
    for k in fingers:
        levels.setdefault(_depth(target.data.bones[tgt[k]]), []).append(k)
    return _Rest(src_names, tgt, G, smw, tmw, W_s0, W_t0, H_s0, H_t0_ref, A, fingers, levels)


def _set_world_rotation(pb, tmw_inv: np.ndarray, world_rot: np.ndarray) -> None:
    """Pose bone ``pb`` so its world rotation is ``world_rot`` (3, 3); ``tmw_inv``: (3, 3) inverse object rotation."""
    import mathutils
    m = np.array(pb.matrix)
    m[:3, :3] = tmw_inv @ world_rot
    pb.matrix = mathutils.Matrix(m.tolist())


def _read_rotation(pb, mode: str) -> list:
    """The pose bone's local rotation in its own mode (4 values for quaternion / axis-angle, else 3)."""
    if mode == 'QUATERNION':
        return list(pb.rotation_quaternion)
    if mode == 'AXIS_ANGLE':
        return list(pb.rotation_axis_angle)
    return list(pb.rotation_euler)


def _pose_frames(source, target, rest: _Rest, hand_reference: str, frames: np.ndarray, wrist: str,
                 keyed: list, modes: dict) -> tuple[list[int], dict]:
    """Pose the target over ``frames`` and read back the keyed bones' local rotations.

    Returns the frames where the source hand is visible and, per keyed bone,
    one rotation (``_read_rotation``) per such frame; the scene's current frame
    is restored."""
    scene = bpy.context.scene
    view_layer = bpy.context.view_layer
    tgt, src_names, G = rest.tgt, rest.src_names, rest.G
    tmw_inv = rest.tmw.T
    values = {k: [] for k in keyed}
    prev_frame = scene.frame_current
    done_frames: list[int] = []
    try:
        for f in frames:
            scene.frame_set(int(f))
            if source.hide_viewport or source.hide_get():
                continue  # the hand is absent here (and a hidden armature's pose is not evaluated)
            done_frames.append(int(f))
            sp = {k: rest.smw @ _rot(source.pose.bones[src_names[k]].matrix) for k in JOINTS}
            H_s = sp["wrist"]
            if wrist == "DELTA":
                _set_world_rotation(target.pose.bones[tgt["wrist"]], tmw_inv,
                                    G @ H_s @ rest.H_s0.T @ G.T @ rest.W_t0["wrist"])
                view_layer.update()
            H_t = rest.tmw @ _rot(target.pose.bones[hand_reference].matrix)
            carry = H_t @ rest.H_t0_ref.T
            for depth in sorted(rest.levels):
                for k in rest.levels[depth]:
                    E = rest.H_s0 @ (H_s.T @ sp[k]) @ (rest.H_s0.T @ rest.W_s0[k]).T @ rest.H_s0.T
                    _set_world_rotation(target.pose.bones[tgt[k]], tmw_inv,
                                        carry @ G @ E @ G.T @ rest.A[k] @ rest.W_t0[k])
                view_layer.update()
            for k in keyed:
                values[k].append(_read_rotation(target.pose.bones[tgt[k]], modes[k]))
    finally:
        scene.frame_set(prev_frame)
    return done_frames, values


def retarget_hand(source, target, frame_start: int, frame_end: int, name_map: str | None = None,
                  wrist: str = "NONE", action_name: str | None = None) -> RetargetResult:
    """Bake the hand of LAGC armature ``source`` onto ``target`` over the frames.

    wrist: ``"NONE"`` keeps the target's wrist (fingers only, relative to its
    hand), ``"DELTA"`` also rotates the target hand by the source wrist's
    rotation from rest (mapped into the target's hand frame).
    The keys go into the target's active action (created if it has none);
    keys of the mapped bones inside the range are replaced, others kept.
    Frames where the source hand is hidden (absent) get no keys.
    """
    side = _check_request(source, target, frame_start, frame_end, wrist)
    bm = find_map(target, side, name_map)
    for need in ("index1", "middle1", "pinky1"):
        if need not in bm.bones:
            raise RetargetError(f"{target.name}: the map lacks {need}, needed to match the palms")
    rest = _rest_alignment(source, target, side, bm)
    tgt = rest.tgt
    frames = np.arange(int(frame_start), int(frame_end) + 1)
    keyed = (["wrist"] if wrist == "DELTA" else []) + rest.fingers
    modes = {k: target.pose.bones[tgt[k]].rotation_mode for k in keyed}
    done_frames, values = _pose_frames(source, target, rest, bm.hand_reference, frames, wrist, keyed, modes)
    if not done_frames:
        raise RetargetError(f"{source.name} is hidden (hand absent) on every frame of {frame_start}..{frame_end}")
    frames = np.asarray(done_frames)
    action = _bake(target, tgt, keyed, modes, frames, values, action_name)
    return RetargetResult(action, frames, {k: tgt[k] for k in keyed}, bm.kind, bm.notes)


_MODE_PATH = {'QUATERNION': ("rotation_quaternion", 4), 'AXIS_ANGLE': ("rotation_axis_angle", 4)}


def _bake(target, tgt: dict, keyed: list, modes: dict, frames: np.ndarray, values: dict, action_name):
    ad = target.animation_data_create()
    action = ad.action
    if action is None:
        action = bpy.data.actions.new(action_name or f"{target.name}_hands")
    writer = compat.ChannelWriter(target, action)
    f0, f1 = float(frames[0]), float(frames[-1])
    for k in keyed:
        name = tgt[k]
        path_name, n = _MODE_PATH.get(modes[k], ("rotation_euler", 3))
        v = np.asarray(values[k], np.float64)
        if path_name == "rotation_quaternion":
            v = quat_sign_continuity(v, axis=0)
        path = f'pose.bones["{name}"].{path_name}'
        for c in range(n):
            fc = compat.find_fcurve(action, path, c) or writer.new(path, c, name)
            npts = len(fc.keyframe_points)
            co = np.empty(2 * npts, np.float32)
            fc.keyframe_points.foreach_get("co", co)
            co = co.reshape(-1, 2)
            outside = co[(co[:, 0] < f0 - 1e-3) | (co[:, 0] > f1 + 1e-3)]
            allco = np.concatenate([outside, np.stack([frames.astype(np.float32), v[:, c].astype(np.float32)], 1)])
            allco = allco[np.argsort(allco[:, 0], kind="stable")]
            pts = fc.keyframe_points
            if hasattr(pts, "clear"):
                pts.clear()
            else:  # pragma: no cover
                while len(pts):
                    pts.remove(pts[0], fast=True)
            pts.add(len(allco))
            pts.foreach_set("co", np.ascontiguousarray(allco, np.float32).ravel())
            pts.foreach_set("interpolation", np.full(len(allco), compat.interpolation_value('LINEAR'), np.int32))
            fc.update()
    return action


# --------------------------------------------------------------------------- operator


class LAGCHAND_OT_retarget(bpy.types.Operator):
    """Bake the selected LAGC hand's animation onto the active rig (Rigify, Mixamo or a name map)"""

    bl_idname = "lagc_hand.retarget"
    bl_label = "Retarget Hand to Rig"
    bl_options = {'REGISTER', 'UNDO'}

    frame_start: IntProperty(name="Start", default=-1, description="-1: scene start")
    frame_end: IntProperty(name="End", default=-1, description="-1: scene end")
    wrist: EnumProperty(name="Wrist", items=[('NONE', "Keep rig's wrist", "Fingers only"),
                                             ('DELTA', "Drive wrist", "Rotate the rig's hand like the source")],
                        default='NONE')
    name_map: StringProperty(name="Name map", subtype='FILE_PATH', default="",
                             description="JSON map of LAGC joints to bone names (empty: detect Rigify / Mixamo)")

    @classmethod
    def poll(cls, context):
        t = context.active_object
        return (t is not None and t.type == 'ARMATURE' and t.get(SIDE_PROP) is None
                and any(o.type == 'ARMATURE' and o.get(SIDE_PROP) for o in context.selected_objects))

    def execute(self, context):
        target = context.active_object
        sources = [o for o in context.selected_objects if o.type == 'ARMATURE' and o.get(SIDE_PROP) and o != target]
        s = context.scene.frame_start if self.frame_start < 0 else self.frame_start
        e = context.scene.frame_end if self.frame_end < 0 else self.frame_end
        done = []
        try:
            for src in sources:
                res = retarget_hand(src, target, s, e, self.name_map or None, self.wrist)
                done.append(f"{src[SIDE_PROP]} ({res.kind}, {len(res.bones)} bones)")
                for note in res.notes:
                    self.report({'WARNING'}, note)
        except RetargetError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"retargeted {', '.join(done)} onto {target.name}, frames {s}-{e}")
        return {'FINISHED'}


CLASSES = (LAGCHAND_OT_retarget,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
