"""Mocap cleanup on LAGC hand armatures in Blender: plain functions + thin operators.

Works on any armature the scene writer made (it carries ``lagc_side`` and the
names of its raw / clean actions), without the backend.  Every edit:

* reads the hand's keys from the armature's active action onto a uniform frame
  grid (:class:`HandKeys`), calls a numpy edit from ``core.mocap_edit`` or
  ``core.keyreduce``, and writes the keys back in bulk (compat layer only);
* never touches the **raw** action: when the raw action is the active one, the
  edit first makes a copy (``<name>_edit``) and works on that, so "reset to
  raw" always has the original data;
* changes only frames inside ``[frame_start, frame_end]`` (scene frames).

Rotation keys are bone-local quaternions (``R_rest^-1 q R_rest`` of the MANO
rotation ``q``): a constant linear map per bone, so smoothing / slerp /
spline give the same rotations as in MANO semantics.  Swapping hands converts
to MANO semantics and back, because the two armatures' rest frames differ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core import handmotion as hm
from ..core import keyreduce, mocap_edit, rig
from ..core.filters import segments
from ..core.rotations import quat_normalize, quat_sign_continuity
from ..core.skeleton import NUM_JOINTS
from . import compat
from .hand import ACTION_PROP, SIDE_PROP
from .keys import visibility_keys, write_keys

#: Custom property: the uniform key step (frames) of the hand's samples.
STEP_PROP = "lagc_key_step"
#: Custom property: the last applied hand-size refit factor (cumulative).
SCALE_PROP = "lagc_shape_scale"

ROT_PATH = 'pose.bones["{}"].rotation_quaternion'
LOC_PATH = 'pose.bones["{}"].location'


class CleanupError(RuntimeError):
    """The selected object or range cannot be edited (message is for the user)."""


# --------------------------------------------------------------------------- finding things


def hand_side(arm) -> str:
    """``"left"`` / ``"right"`` of a LAGC hand armature, or raise CleanupError."""
    if arm is None or arm.type != 'ARMATURE' or arm.get(SIDE_PROP) not in hm.SIDES:
        name = getattr(arm, "name", None)
        raise CleanupError(f"{name!r} is not a LAGC-Hand armature; select a hand armature made by the add-on")
    return arm[SIDE_PROP]


def joint_bone_names(arm) -> list[str]:
    return rig.bone_names(hand_side(arm))[:NUM_JOINTS]


def hand_mesh(arm):
    """The skinned mesh child of ``arm`` (or None)."""
    for ob in arm.children:
        if ob.type == 'MESH' and ob.get(SIDE_PROP) == arm.get(SIDE_PROP):
            return ob
    return None


def partner_hand(arm):
    """The other hand of the same import (same parent empty, other side), or None."""
    side = hand_side(arm)
    for ob in (arm.parent.children if arm.parent else bpy.context.scene.objects):
        if ob is not arm and ob.type == 'ARMATURE' and ob.get(SIDE_PROP) in hm.SIDES and ob[SIDE_PROP] != side:
            return ob
    return None


def raw_action(arm):
    name = arm.get(ACTION_PROP.format("raw"))
    return bpy.data.actions.get(name) if name else None


def edit_action(arm):
    """The action edits go into: the active one, or a copy when the active one is raw."""
    ad = arm.animation_data
    action = ad.action if ad else None
    if action is None:
        raise CleanupError(f"{arm.name} has no animation to edit")
    raw = raw_action(arm)
    if raw is not None and action == raw:
        action = raw.copy()
        action.name = f"{raw.name}_edit"
        action.use_fake_user = True
        compat.assign_action(arm, action)
    return action


def rest_frames(arm) -> tuple[np.ndarray, np.ndarray]:
    """(16, 3, 3) rest rotations and (16, 3) rest heads of the joint bones (armature space)."""
    bones = arm.data.bones
    mats = np.array([np.array(bones[n].matrix_local) for n in joint_bone_names(arm)], np.float64)
    return mats[:, :3, :3], mats[:, :3, 3]


# --------------------------------------------------------------------------- reading / writing keys


@dataclass
class HandKeys:
    """One hand's animation sampled on a uniform grid of scene frames.

    frames:  (N,) float64 scene frames, ``first + step * k``.
    present: (N,) bool, the hand is visible (not ``hide_viewport``) and keyed.
    quats:   (N, 16, 4) float64 bone-local rotation_quaternion (w, x, y, z).
    loc:     (N, 3) float64 wrist bone location (its rest frame, metres).
    types:   (N,) int32 Keyframe type of each sample's keys.
    keyed:   (N, 17) bool, which samples carry a key, per channel: the 16 bones'
             rotations, then the wrist location (a reduced action keys few samples).
    """

    frames: np.ndarray
    present: np.ndarray
    quats: np.ndarray
    loc: np.ndarray
    types: np.ndarray
    keyed: np.ndarray

    def select(self, frame_start: float, frame_end: float) -> np.ndarray:
        return (self.frames >= frame_start - 1e-6) & (self.frames <= frame_end + 1e-6)


def _key_arrays(fc) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(fc.keyframe_points)
    co = np.empty(2 * n, np.float32)
    fc.keyframe_points.foreach_get("co", co)
    interp = np.empty(n, np.int32)
    fc.keyframe_points.foreach_get("interpolation", interp)
    types = np.empty(n, np.int32)
    fc.keyframe_points.foreach_get("type", types)
    co = co.reshape(n, 2).astype(np.float64)
    return co[:, 0], co[:, 1], interp, types


def _has_key(fc, frames: np.ndarray) -> np.ndarray:
    """(N,) bool: a key of ``fc`` sits on each of ``frames`` (within 1e-3 frame)."""
    kf = _key_arrays(fc)[0] if fc is not None else np.zeros(0)
    if len(kf) == 0:
        return np.zeros(len(frames), bool)
    pos = np.minimum(np.searchsorted(kf, frames - 1e-3), len(kf) - 1)
    return np.abs(kf[pos] - frames) < 1e-3


def _sample(fc, frames: np.ndarray) -> np.ndarray:
    f, v, interp, _ = _key_arrays(fc)
    if len(f) == 0:
        return np.zeros(len(frames))
    if np.all(interp == compat.interpolation_value('LINEAR')):
        return np.interp(frames, f, v)  # exactly Blender's linear evaluation, in bulk
    return np.array([fc.evaluate(float(t)) for t in frames])


def _hand_fcurves(arm, action) -> tuple[list, list]:
    names = joint_bone_names(arm)
    rot = [[compat.find_fcurve(action, ROT_PATH.format(n), c) for c in range(4)] for n in names]
    loc = [compat.find_fcurve(action, LOC_PATH.format(names[0]), c) for c in range(3)]
    return rot, loc


def _grid(arm, action) -> np.ndarray:
    rot, _ = _hand_fcurves(arm, action)
    keyed = [_key_arrays(fc)[0] for bone in rot for fc in bone if fc is not None]
    if not keyed or not any(len(k) for k in keyed):
        raise CleanupError(f"{arm.name}: the action {action.name!r} has no rotation keys for this hand")
    allf = np.unique(np.round(np.concatenate(keyed), 3))
    step = float(arm.get(STEP_PROP, 0.0))
    if step <= 0:
        d = np.diff(allf)
        step = float(max(1.0, np.round(d.min()))) if d.size else 1.0
        arm[STEP_PROP] = step
    return _uniform(allf, step)


def _uniform(frames: np.ndarray, step: float) -> np.ndarray:
    """The grid ``first, first + step, ...`` up to the last of ``frames`` (sorted scene frames)."""
    return frames[0] + step * np.arange(int(np.round((frames[-1] - frames[0]) / step)) + 1)


def read_hand_keys(arm, action=None, frames: np.ndarray | None = None, normalize: bool = True) -> HandKeys:
    """Sample ``action`` (default: the active one) of hand ``arm`` on its frame grid.

    normalize: unit quaternions (what the edits filter); False keeps what the
    F-Curves evaluate to between keys (a component-wise lerp, not unit), so that
    re-keying a sample between two keys leaves the curve exactly as it was.
    """
    action = action or (arm.animation_data.action if arm.animation_data else None)
    if action is None:
        raise CleanupError(f"{arm.name} has no animation")
    frames = _grid(arm, action) if frames is None else np.asarray(frames, np.float64)
    rot, loc = _hand_fcurves(arm, action)
    n = len(frames)
    quats = np.zeros((n, NUM_JOINTS, 4))
    quats[..., 0] = 1.0
    keyed = np.zeros(n, bool)
    types = np.full(n, compat.keyframe_type_value('KEYFRAME'), np.int32)
    for j, bone in enumerate(rot):
        for c, fc in enumerate(bone):
            if fc is not None:
                quats[:, j, c] = _sample(fc, frames)
    wfc = rot[0][0]
    if wfc is not None:
        kf, _, _, kt = _key_arrays(wfc)
        if len(kf):
            keyed = (frames >= kf[0] - 1e-6) & (frames <= kf[-1] + 1e-6)
            pos = np.searchsorted(kf, frames - 1e-4)
            hit = (pos < len(kf)) & (np.abs(kf[np.minimum(pos, len(kf) - 1)] - frames) < 1e-3)
            types[hit] = kt[pos[hit]]
    locs = np.zeros((n, 3))
    for c, fc in enumerate(loc):
        if fc is not None:
            locs[:, c] = _sample(fc, frames)
    hide = compat.find_fcurve(action, "hide_viewport", 0)
    visible = np.ones(n, bool) if hide is None else np.array([hide.evaluate(float(t)) < 0.5 for t in frames])
    if normalize:
        quats = quat_normalize(quats)
    has_key = np.stack([_has_key(bone[0], frames) for bone in rot] + [_has_key(loc[0], frames)], axis=1)
    return HandKeys(frames, keyed & visible, quats, locs, types, has_key)


def _replace_keys(fc, frames: np.ndarray, values: np.ndarray, interpolation: str, types=None) -> None:
    """Replace every key of ``fc`` by ``(frames (N,), values (N,))`` (frames increasing)."""
    points = fc.keyframe_points
    if hasattr(points, "clear"):
        points.clear()
    else:  # pragma: no cover - older Blender
        while len(points):
            points.remove(points[0], fast=True)
    write_keys(fc, frames, values, interpolation, types)
    fc.update()


def _ensure(action, arm, path: str, index: int, group: str):
    fc = compat.find_fcurve(action, path, index)
    if fc is None:
        fc = compat.ChannelWriter(arm, action).new(path, index, group)
    return fc


def write_hand_keys(arm, action, keys: HandKeys, write_visibility: bool = True,
                    keep: np.ndarray | None = None) -> None:
    """Replace the hand's rotation / wrist-location keys in ``action`` by ``keys``
    (keys on present samples only, LINEAR, sign-continuous) and its visibility.

    keep: optional (N, 17) bool, the samples to key per channel (16 bone rotations,
    then the wrist location; see ``keyreduce.reduce_hand_keys``); default every
    present sample.  Only present samples are ever keyed.
    """
    names = joint_bone_names(arm)
    keep = np.ones((len(keys.frames), NUM_JOINTS + 1), bool) if keep is None else np.asarray(keep, bool)
    keep = keep & keys.present[:, None]
    # One chain over the present samples: the (hidden) interpolation across a gap
    # also takes the short way.
    q = keys.quats.copy()
    q[keys.present] = quat_sign_continuity(keys.quats[keys.present])
    for j, name in enumerate(names):
        sub = keep[:, j]
        for c in range(4):
            fc = _ensure(action, arm, ROT_PATH.format(name), c, name)
            _replace_keys(fc, keys.frames[sub], q[sub, j, c], 'LINEAR', keys.types[sub])
    sub = keep[:, NUM_JOINTS]
    for c in range(3):
        fc = _ensure(action, arm, LOC_PATH.format(names[0]), c, names[0])
        _replace_keys(fc, keys.frames[sub], keys.loc[sub, c], 'LINEAR', keys.types[sub])
    if write_visibility:
        write_visibility_keys(arm, action, keys.frames, keys.present)


def write_visibility_keys(arm, action, frames: np.ndarray, present: np.ndarray) -> None:
    """Constant hide keys on the armature's action and the mesh's visibility action.

    Frames outside the grid keep the hand hidden before its first and after its
    last sample only if the old keys said so; inside they follow ``present``.
    """
    vf, hidden = visibility_keys(present, frames)
    targets = [(action, arm, ("hide_viewport",))]
    mesh = hand_mesh(arm)
    if mesh is not None and mesh.animation_data and mesh.animation_data.action:
        targets.append((mesh.animation_data.action, mesh, ("hide_viewport", "hide_render")))
    for act, ob, paths in targets:
        for path in paths:
            fc = _ensure(act, ob, path, 0, "Visibility")
            # Keep keys before the grid (e.g. hidden at frame 1 when the hand enters late).
            kf, kv, _, _ = _key_arrays(fc)
            before = kf < frames[0] - 1e-6
            _replace_keys(fc, np.concatenate([kf[before], vf]), np.concatenate([kv[before], hidden]), 'CONSTANT')


# --------------------------------------------------------------------------- the edits


@dataclass
class EditReport:
    """What an edit did: ``changed`` samples, and before/after of its metric."""

    changed: int
    metric: str = ""
    before: float | int = 0.0
    after: float | int = 0.0

    def message(self, what: str) -> str:
        """e.g. ``"Reduce Keys: 72 frames changed; keys 4824 -> 1210"`` (counts are
        printed as integers, measures with 3 significant digits)."""
        def num(v):
            return str(v) if isinstance(v, (int, np.integer)) else f"{v:.3g}"
        m = f"; {self.metric} {num(self.before)} -> {num(self.after)}" if self.metric else ""
        return f"{what}: {self.changed} frames changed{m}"


def _check_range(frame_start: float, frame_end: float) -> None:
    if frame_end < frame_start:
        raise CleanupError(f"the frame range {frame_start}..{frame_end} is empty (end before start)")


def smooth_hand(arm, frame_start: float, frame_end: float, strength: float = 1.5) -> EditReport:
    """Gaussian smoothing (sigma = ``strength`` frames) of rotations and wrist location."""
    _check_range(frame_start, frame_end)
    action = edit_action(arm)
    k = read_hand_keys(arm, action)
    sel = k.select(frame_start, frame_end)
    before = mocap_edit.rotation_jitter_deg(k.quats[sel], k.present[sel])
    try:
        k.quats, k.loc = mocap_edit.smooth(k.quats, k.loc, k.present, strength, sel)
    except mocap_edit.MocapEditError as exc:
        raise CleanupError(str(exc)) from None
    write_hand_keys(arm, action, k, write_visibility=False)
    after = mocap_edit.rotation_jitter_deg(k.quats[sel], k.present[sel])
    return EditReport(int((sel & k.present).sum()), "rotation jitter (deg/frame^2)", before, after)


def despike_hand(arm, frame_start: float, frame_end: float, angle_deg: float = 20.0,
                 distance_mm: float = 30.0) -> EditReport:
    """Replace 1-2 frame spikes (a joint that jumps > ``angle_deg`` and comes back,
    or the wrist jumping > ``distance_mm``) by interpolation."""
    _check_range(frame_start, frame_end)
    action = edit_action(arm)
    k = read_hand_keys(arm, action)
    sel = k.select(frame_start, frame_end)
    k.quats, k.loc, n = mocap_edit.remove_spikes(k.quats, k.loc, k.present, sel, angle_deg, distance_mm / 1000.0)
    write_hand_keys(arm, action, k, write_visibility=False)
    return EditReport(n)


def fill_gaps_hand(arm, frame_start: float, frame_end: float, max_gap: int = 10, method: str = "SLERP") -> EditReport:
    """Bridge hidden stretches of at most ``max_gap`` samples (slerp or spline);
    the bridged keys are typed 'GENERATED' and the hand becomes visible there."""
    _check_range(frame_start, frame_end)
    action = edit_action(arm)
    k = read_hand_keys(arm, action)
    sel = k.select(frame_start, frame_end)
    try:
        k.quats, k.loc, present = mocap_edit.fill_gaps(k.quats, k.loc, k.present, int(max_gap), sel, method)
    except mocap_edit.MocapEditError as exc:
        raise CleanupError(str(exc)) from None
    new = present & ~k.present
    gen = compat.keyframe_type_value('GENERATED' if bpy.app.version >= (4, 2, 0) else 'BREAKDOWN')
    k.types[new] = gen
    k.present = present
    write_hand_keys(arm, action, k)
    return EditReport(int(new.sum()))


def reset_to_raw(arm, frame_start: float, frame_end: float) -> EditReport:
    """Put the raw action's keys (and visibility) back inside the range."""
    _check_range(frame_start, frame_end)
    raw = raw_action(arm)
    if raw is None:
        raise CleanupError(f"{arm.name} has no raw action to reset to")
    action = edit_action(arm)
    cur = read_hand_keys(arm, action)
    frames = np.union1d(cur.frames, _grid(arm, raw))
    cur = read_hand_keys(arm, action, frames)
    rk = read_hand_keys(arm, raw, frames)
    sel = cur.select(frame_start, frame_end)
    for name in ("present", "quats", "loc", "types"):
        getattr(cur, name)[sel] = getattr(rk, name)[sel]
    write_hand_keys(arm, action, cur)
    return EditReport(int(sel.sum()))


def _to_motion(arm, k: HandKeys) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rest_rot, rest_head = rest_frames(arm)
    q = rig.bone_quats_to_motion(k.quats, rest_rot)
    root = k.loc @ rest_rot[0].T + rest_head[0]
    return q, root, k.present.copy()


def _from_motion(arm, q: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rest_rot, rest_head = rest_frames(arm)
    # Keep each sample's norm: a sample between two reduced keys is their lerp, and
    # re-keying it with a unit value would bend the curve around it.
    bq = rig.motion_to_bone_quats(q, rest_rot) * np.linalg.norm(q, axis=-1, keepdims=True)
    loc = rig.root_to_bone_location(root, rest_rot[0], rest_head[0])
    return bq, loc


def swap_hands(arm, frame_start: float, frame_end: float, other=None) -> EditReport:
    """Exchange the left and right hands' motion (and visibility) inside the range:
    fixes an identity switch the tracker made.  Converts through MANO semantics
    (each armature's own rest frames), so ``swap(swap(x)) == x``."""
    _check_range(frame_start, frame_end)
    other = other or partner_hand(arm)
    if other is None:
        raise CleanupError(f"{arm.name} has no other hand in its import to swap with")
    act_a, act_b = edit_action(arm), edit_action(other)
    frames = np.union1d(_grid(arm, act_a), _grid(other, act_b))
    step = min(float(arm[STEP_PROP]), float(other[STEP_PROP]))
    frames = _uniform(frames, step)
    ka, kb = read_hand_keys(arm, act_a, frames, normalize=False), read_hand_keys(other, act_b, frames, normalize=False)
    sel = ka.select(frame_start, frame_end)
    ma, mb = _to_motion(arm, ka), _to_motion(other, kb)
    ma, mb = mocap_edit.swap_hands(ma, mb, sel)
    keyed_a, keyed_b = _swapped_keys(ka.keyed, kb.keyed, sel, ma[2]), _swapped_keys(kb.keyed, ka.keyed, sel, mb[2])
    for ob, act, k, m, keyed in ((arm, act_a, ka, ma, keyed_a), (other, act_b, kb, mb, keyed_b)):
        k.quats, k.loc = _from_motion(ob, m[0], m[1])
        k.present = m[2]
        ob[STEP_PROP] = step
        write_hand_keys(ob, act, k, keep=keyed)
    return EditReport(int(sel.sum()))


def _swapped_keys(own: np.ndarray, other: np.ndarray, sel: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Key samples (N, 17) of a hand after a swap: its own keys outside ``sel``, the
    other hand's inside (both curves are linear between their keys, and the swap's
    conversion is linear, so a reduced hand stays reduced and evaluates the same),
    plus every channel on both sides of the range edges and at the ends of each
    present stretch."""
    keep = np.where(sel[:, None], other, own)
    edge = np.flatnonzero(np.diff(sel.astype(np.int8)))
    keep[np.concatenate([edge, edge + 1])] = True
    for s, e in segments(present):
        keep[[s, e - 1]] = True
    return keep


def reduce_hand_keys(arm, frame_start: float, frame_end: float, angle_deg: float = 0.5,
                     distance_mm: float = 1.0) -> EditReport:
    """Keep the fewest keys so that every sample is within ``angle_deg`` (per bone,
    geodesic) and the wrist within ``distance_mm``: ``keyreduce.reduce_hand_keys``,
    the same reduction as ``lagc-hand cleanup --reduce`` (each bone on its own, each
    visible stretch on its own).  Keys outside the range and at gap edges are kept."""
    _check_range(frame_start, frame_end)
    action = edit_action(arm)
    k = read_hand_keys(arm, action)
    sel = k.select(frame_start, frame_end)
    keep = keyreduce.reduce_hand_keys(k.frames, k.present, k.quats, k.loc, np.radians(angle_deg),
                                      distance_mm / 1000.0, sel, k.keyed)
    before = keyreduce.fcurve_key_count(k.keyed & k.present[:, None])
    write_hand_keys(arm, action, k, write_visibility=False, keep=keep)
    return EditReport(int((sel & k.present).sum()), "keys", before, keyreduce.fcurve_key_count(keep))


def refit_hand_shape(arm, keypoints3d: np.ndarray, present: np.ndarray) -> mocap_edit.ScaleFit:
    """Scale the hand (bones and mesh, uniformly about the wrist) so its bone
    lengths match observed keypoints (T, 21, 3) public order, metres.

    Bone orientations and the wrist head are unchanged, so every rotation and
    location key stays valid.  The factor is stored cumulatively in
    ``lagc_shape_scale``.
    """
    names = rig.bone_names(hand_side(arm))
    bones = arm.data.bones
    heads = np.array([np.array(bones[n].head_local) for n in names], np.float64)
    tips = heads[NUM_JOINTS:]
    try:
        fit = mocap_edit.fit_hand_scale(keypoints3d, present, heads[:NUM_JOINTS], tips)
    except mocap_edit.MocapEditError as exc:
        raise CleanupError(str(exc)) from None
    s = fit.scale
    if not (0.2 < s < 5.0):
        raise CleanupError(f"the keypoints imply a hand {s:.2f}x the armature's size; refusing such a change")
    wrist = heads[0]
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    prev_mode = arm.mode
    view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        for eb in arm.data.edit_bones:
            roll = eb.roll
            eb.head = (wrist + s * (np.array(eb.head) - wrist)).tolist()
            eb.tail = (wrist + s * (np.array(eb.tail) - wrist)).tolist()
            eb.roll = roll
    finally:
        bpy.ops.object.mode_set(mode='OBJECT' if prev_mode != 'POSE' else 'POSE')
        view_layer.objects.active = prev_active
    mesh = hand_mesh(arm)
    if mesh is not None:
        co = np.empty(3 * len(mesh.data.vertices), np.float64)
        mesh.data.vertices.foreach_get("co", co)
        co = (wrist + s * (co.reshape(-1, 3) - wrist)).ravel()
        mesh.data.vertices.foreach_set("co", co)
        mesh.data.update()
    arm[SCALE_PROP] = float(arm.get(SCALE_PROP, 1.0)) * s
    return fit


def refit_from_file(arm, motion_path: str, variant: str = "raw") -> mocap_edit.ScaleFit:
    """:func:`refit_hand_shape` with the keypoints of a HandMotion file (the one
    this hand was imported from, or a new reconstruction of the same person)."""
    try:
        motion = hm.load(bpy.path.abspath(motion_path))
    except hm.HandMotionError as exc:
        raise CleanupError(str(exc)) from None
    hand = motion.hands[hand_side(arm)]
    return refit_hand_shape(arm, hand.variant(variant).keypoints3d, hand.present)


# --------------------------------------------------------------------------- operators


class _HandOperator:
    bl_options = {'REGISTER', 'UNDO'}

    frame_start: IntProperty(name="Start", default=-1, description="First frame (-1: scene start)")
    frame_end: IntProperty(name="End", default=-1, description="Last frame (-1: scene end)")

    @classmethod
    def poll(cls, context):
        ob = context.active_object
        return ob is not None and ob.type == 'ARMATURE' and ob.get(SIDE_PROP) in hm.SIDES

    def _range(self, context):
        s = context.scene.frame_start if self.frame_start < 0 else self.frame_start
        e = context.scene.frame_end if self.frame_end < 0 else self.frame_end
        return float(s), float(e)

    def execute(self, context):
        try:
            report = self.edit(context.active_object, *self._range(context))
        except CleanupError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, report.message(self.bl_label) if isinstance(report, EditReport) else str(report))
        return {'FINISHED'}


class LAGCHAND_OT_smooth(_HandOperator, bpy.types.Operator):
    """Smooth the selected hand's rotations and wrist path over a frame range"""

    bl_idname = "lagc_hand.cleanup_smooth"
    bl_label = "Smooth Hand"
    strength: FloatProperty(name="Strength", default=1.5, min=0.0, max=20.0,
                            description="Gaussian width in frames")

    def edit(self, arm, s, e):
        return smooth_hand(arm, s, e, self.strength)


class LAGCHAND_OT_despike(_HandOperator, bpy.types.Operator):
    """Replace one- or two-frame spikes of the selected hand by interpolation"""

    bl_idname = "lagc_hand.cleanup_despike"
    bl_label = "Remove Spikes"
    angle: FloatProperty(name="Angle", default=20.0, min=0.1, max=180.0, description="Joint jump, degrees")
    distance: FloatProperty(name="Distance", default=30.0, min=0.1, description="Wrist jump, mm")

    def edit(self, arm, s, e):
        return despike_hand(arm, s, e, self.angle, self.distance)


class LAGCHAND_OT_fill_gaps(_HandOperator, bpy.types.Operator):
    """Fill frames where the selected hand is missing (slerp or spline)"""

    bl_idname = "lagc_hand.cleanup_fill_gaps"
    bl_label = "Fill Gaps"
    max_gap: IntProperty(name="Longest gap", default=10, min=1, description="Frames")
    method: EnumProperty(name="Method", items=[('SLERP', "Slerp", ""), ('SPLINE', "Spline", "")], default='SPLINE')

    def edit(self, arm, s, e):
        return fill_gaps_hand(arm, s, e, self.max_gap, self.method)


class LAGCHAND_OT_swap_hands(_HandOperator, bpy.types.Operator):
    """Exchange the left and right hands' motion over a frame range (fixes identity switches)"""

    bl_idname = "lagc_hand.cleanup_swap"
    bl_label = "Swap Left/Right"

    def edit(self, arm, s, e):
        return swap_hands(arm, s, e)


class LAGCHAND_OT_reset_raw(_HandOperator, bpy.types.Operator):
    """Put the raw (unfiltered) motion back on the selected hand over a frame range"""

    bl_idname = "lagc_hand.cleanup_reset_raw"
    bl_label = "Reset to Raw"

    def edit(self, arm, s, e):
        return reset_to_raw(arm, s, e)


class LAGCHAND_OT_reduce_keys(_HandOperator, bpy.types.Operator):
    """Remove keys the motion does not need, within a tolerance"""

    bl_idname = "lagc_hand.cleanup_reduce"
    bl_label = "Reduce Keys"
    angle: FloatProperty(name="Angle tolerance", default=0.5, min=0.001, max=45.0, description="Degrees")
    distance: FloatProperty(name="Distance tolerance", default=1.0, min=0.001, description="Wrist, mm")

    def edit(self, arm, s, e):
        return reduce_hand_keys(arm, s, e, self.angle, self.distance)


class LAGCHAND_OT_refit_shape(bpy.types.Operator):
    """Scale the selected hand so its bone lengths match the keypoints of a HandMotion file"""

    bl_idname = "lagc_hand.cleanup_refit_shape"
    bl_label = "Re-fit Hand Size"
    bl_options = {'REGISTER', 'UNDO'}
    filepath: StringProperty(name="HandMotion file", subtype='FILE_PATH', default="")

    poll = _HandOperator.poll

    def execute(self, context):
        if not self.filepath:
            self.report({'ERROR'}, "choose the HandMotion file whose keypoints the hand should match")
            return {'CANCELLED'}
        try:
            fit = refit_from_file(context.active_object, self.filepath)
        except CleanupError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"hand scaled by {fit.scale:.3f} ({fit.frames_used} frames, spread {fit.spread:.1%})")
        return {'FINISHED'}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}


CLASSES = (LAGCHAND_OT_smooth, LAGCHAND_OT_despike, LAGCHAND_OT_fill_gaps, LAGCHAND_OT_swap_hands,
           LAGCHAND_OT_reset_raw, LAGCHAND_OT_reduce_keys, LAGCHAND_OT_refit_shape)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
