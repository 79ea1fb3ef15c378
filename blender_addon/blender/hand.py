"""One hand in Blender: armature (MANO tree), skinned mesh, raw/clean actions.

All functions are synchronous and usable headless.  Every data-block they
create is appended to ``created`` so the caller can remove it on failure.
"""
from __future__ import annotations

import numpy as np

import bpy

from ..core import rig
from ..core.handmotion import HandMotion, HandTrackMotion, VARIANTS
from ..core.skeleton import NUM_JOINTS
from ..core.skinning import limit_influences
from . import compat
from .keys import visibility_keys, write_keys, write_vector

#: Custom property keyed per frame on the armature: the hand's confidence in [0, 1].
CONFIDENCE_PROP = "lagc_confidence"
#: Custom property on armatures and meshes naming the action of each variant.
ACTION_PROP = "lagc_action_{}"
#: Custom property marking LAGC hands: the side ("left"/"right").
SIDE_PROP = "lagc_side"

#: Scene frame of video frame 0: scene frame = video frame + 1, the same for keys,
#: the video background and the panel's frame range (props.api_frame_range).
SCENE_FRAME_OFFSET = 1

SKIN_COLORS = {"right": (0.80, 0.58, 0.47, 1.0), "left": (0.72, 0.52, 0.50, 1.0)}


def _new_object(name: str, data, collection, created: list) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, data)
    created.append(obj)
    collection.objects.link(obj)
    return obj


def build_armature(name: str, hand: HandTrackMotion, collection, parent, created: list) -> tuple:
    """Armature object with 21 bones in the rest-model frame.

    Returns ``(object, rest_rot (21, 3, 3), rest_head (21, 3))``: the bones' rest
    orientations and heads as Blender stored them (after its roll rounding),
    which is what the key conversion must use.
    """
    layout = rig.bone_layout(hand.rest_joints, hand.rest_vertices, hand.tip_vertex_ids, hand.side)
    data = bpy.data.armatures.new(name)
    created.append(data)
    data.display_type = 'OCTAHEDRAL'
    obj = _new_object(name, data, collection, created)
    obj.parent = parent
    obj.show_in_front = True
    view_layer = bpy.context.view_layer
    previous_active = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        for i, bone_name in enumerate(layout.names):
            eb = data.edit_bones.new(bone_name)
            eb.head = layout.heads[i].tolist()
            eb.tail = layout.tails[i].tolist()
            eb.align_roll(layout.z_axes[i].tolist())
            eb.use_deform = i < NUM_JOINTS
        for i, bone_name in enumerate(layout.names):
            p = layout.parents[i]
            if p >= 0:
                data.edit_bones[bone_name].parent = data.edit_bones[layout.names[p]]
    finally:
        # Edit bones die with edit mode: nothing may keep references to them.
        bpy.ops.object.mode_set(mode='OBJECT')
        view_layer.objects.active = previous_active
    rest = np.array([np.array(data.bones[n].matrix_local) for n in layout.names], dtype=np.float64)
    for pb in obj.pose.bones:
        pb.rotation_mode = 'QUATERNION'
    return obj, rest[:, :3, :3], rest[:, :3, 3]


def skin_material(side: str, created: list) -> bpy.types.Material:
    mat = bpy.data.materials.new(f"LAGC skin.{rig.SIDE_SUFFIX[side]}")
    created.append(mat)
    mat.diffuse_color = SKIN_COLORS[side]  # viewport / Workbench colour
    mat.roughness = 0.6
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True  # always on in 5.0, where the property is deprecated
    bsdf = mat.node_tree.nodes.get("Principled BSDF") if mat.node_tree else None
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = SKIN_COLORS[side]
        bsdf.inputs["Roughness"].default_value = 0.6
    return mat


def build_mesh(name: str, motion: HandMotion, hand: HandTrackMotion, arm_obj, collection, created: list,
               max_influences: int = 0):
    """Skinned mesh: rest vertices, faces, one vertex group per joint bone,
    an Armature modifier, smooth shading and a skin material.
    ``max_influences > 0`` keeps that many weights per vertex (renormalised)."""
    verts = np.asarray(hand.rest_vertices, dtype=np.float64)
    faces = rig.fix_winding(verts, motion.faces)
    mesh = bpy.data.meshes.new(name)
    created.append(mesh)
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    mesh.update()
    mesh.materials.append(skin_material(hand.side, created))
    obj = _new_object(name, mesh, collection, created)
    obj.parent = arm_obj
    names = rig.bone_names(hand.side)
    weights = np.asarray(motion.skin_weights, dtype=np.float32)
    if max_influences > 0:
        weights = limit_influences(weights, max_influences).astype(np.float32)
    for j in range(NUM_JOINTS):
        vg = obj.vertex_groups.new(name=names[j])
        w = weights[:, j]
        idx = np.nonzero(w > 1e-6)[0]
        # VertexGroup.add takes one weight for many vertices: one call per distinct weight.
        values, inverse = np.unique(w[idx], return_inverse=True)
        for k, value in enumerate(values):
            vg.add(idx[inverse == k].tolist(), float(value), 'REPLACE')
    mod = obj.modifiers.new("Armature", 'ARMATURE')
    mod.object = arm_obj
    return obj


def key_types_for(confidence: np.ndarray, low_confidence: float) -> np.ndarray:
    """(N,) Keyframe type per key: 'JITTER' below the threshold, else 'KEYFRAME'."""
    jitter = compat.keyframe_type_value('JITTER')
    normal = compat.keyframe_type_value('KEYFRAME')
    return np.where(np.asarray(confidence) < low_confidence, jitter, normal).astype(np.int32)


def write_hand_actions(name: str, motion: HandMotion, hand: HandTrackMotion, arm_obj, mesh_obj,
                       rest_rot: np.ndarray, rest_head: np.ndarray, low_confidence: float,
                       active_variant: str, created: list) -> dict:
    """Raw and clean actions on the armature, a visibility action on the mesh.

    Rotation and location keys exist only on frames where the hand is present;
    both objects are hidden (constant keys) where it is absent, so a lost hand
    disappears instead of freezing in place.  Returns ``{variant: action}``.
    """
    scene_frames = np.asarray(motion.frames, dtype=np.float64) + SCENE_FRAME_OFFSET
    present = np.asarray(hand.present, dtype=bool)
    idx = np.nonzero(present)[0]
    frames = scene_frames[idx]
    types = key_types_for(hand.confidence[idx], low_confidence)
    names = rig.bone_names(hand.side)
    vis_frames, hidden = visibility_keys(present, scene_frames)
    arm_obj[CONFIDENCE_PROP] = 0.0
    actions = {}
    for variant in VARIANTS:
        v = hand.variant(variant)
        action = bpy.data.actions.new(f"{name}_{variant}")
        created.append(action)
        action.use_fake_user = True  # the inactive variant must survive saving
        writer = compat.ChannelWriter(arm_obj, action)
        bone_q = rig.motion_to_bone_quats(v.quats[idx], rest_rot[:NUM_JOINTS])
        loc = rig.root_to_bone_location(v.root[idx], rest_rot[0], rest_head[0])
        write_vector(writer, f'pose.bones["{names[0]}"].location', names[0], frames, loc, key_types=types)
        for j in range(NUM_JOINTS):
            write_vector(writer, f'pose.bones["{names[j]}"].rotation_quaternion', names[j], frames,
                         bone_q[:, j], key_types=types)
        conf = writer.new(f'["{CONFIDENCE_PROP}"]', 0, "LAGC")
        write_keys(conf, scene_frames, hand.confidence, 'LINEAR')
        write_keys(writer.new("hide_viewport", 0, "Visibility"), vis_frames, hidden, 'CONSTANT')
        actions[variant] = action
        arm_obj[ACTION_PROP.format(variant)] = action.name
    vis_action = bpy.data.actions.new(f"{mesh_obj.name}_visibility")
    created.append(vis_action)
    writer = compat.ChannelWriter(mesh_obj, vis_action)
    write_keys(writer.new("hide_viewport", 0, "Visibility"), vis_frames, hidden, 'CONSTANT')
    write_keys(writer.new("hide_render", 0, "Visibility"), vis_frames, hidden, 'CONSTANT')
    compat.assign_action(arm_obj, actions[active_variant])
    return actions


def build_hand(name: str, motion: HandMotion, side: str, collection, parent, low_confidence: float,
               active_variant: str, created: list, max_influences: int = 0) -> tuple:
    """Armature + skinned mesh + actions of one hand; returns ``(armature, mesh, actions)``."""
    hand = motion.hands[side]
    suffix = rig.SIDE_SUFFIX[side]
    arm_obj, rest_rot, rest_head = build_armature(f"{name}_hand.{suffix}", hand, collection, parent, created)
    arm_obj[SIDE_PROP] = side
    mesh_obj = build_mesh(f"{name}_hand_mesh.{suffix}", motion, hand, arm_obj, collection, created,
                          max_influences)
    mesh_obj[SIDE_PROP] = side
    actions = write_hand_actions(f"{name}_hand.{suffix}", motion, hand, arm_obj, mesh_obj, rest_rot, rest_head,
                                 low_confidence, active_variant, created)
    return arm_obj, mesh_obj, actions
