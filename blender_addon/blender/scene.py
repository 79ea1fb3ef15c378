"""The scene writer: a HandMotion -> armatures, skinned meshes, actions, camera.

Plain synchronous functions, usable headless (``bpy`` module, batch command,
demo script) and from the add-on's operators.  Everything is built inside one
``try``: on any failure every data-block created so far is removed again, so
the user's scene is never left half-written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import bpy

from ..core import handmotion as hm
from . import compat
from .camera import apply_render_settings, attach_video, build_camera, camera_frame_empty
from .framing import add_key_light, clear_camera_view, hands_far_depth
from .hand import ACTION_PROP, build_hand


@dataclass
class ImportOptions:
    """name:           prefix of every created data-block.
    variant:        'clean' or 'raw': the action active after import.
    low_confidence: frames below this confidence get 'JITTER' keyframes.
    camera:         create a camera matching the intrinsics (and set render size).
    video_path:     source video for the camera background; ``None`` = the
                    motion's ``meta["source"]`` if that file exists; ``""`` = none.
    set_scene:      set the scene's frame range and fps from the motion.
    max_influences: > 0: keep at most this many skin weights per vertex,
                    renormalised (4 for glTF and game engines); 0 = all.
    clear_view:     hide the scene's other objects that stand between the new
                    camera and the hands (``framing.py``; named in the warnings).
    light:          add a sun light along the camera's view to the collection.
    """

    name: str = "LAGC"
    variant: str = "clean"
    low_confidence: float = 0.5
    camera: bool = True
    video_path: str | None = None
    set_scene: bool = True
    max_influences: int = 0
    clear_view: bool = True
    light: bool = True


@dataclass
class ImportResult:
    collection: object
    root: object
    armatures: dict = field(default_factory=dict)
    meshes: dict = field(default_factory=dict)
    actions: dict = field(default_factory=dict)
    camera: object = None
    clip: object = None
    light: object = None
    hidden: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _unique_collection_name(base: str) -> str:
    name, i = base, 1
    while name in bpy.data.collections:
        i += 1
        name = f"{base}.{i:03d}"
    return name


def _remove(created: list) -> None:
    """Remove data-blocks in reverse creation order (objects before their data)."""
    if bpy.context.object is not None and bpy.context.object.mode != 'OBJECT':
        try:
            bpy.ops.object.mode_set(mode='OBJECT')
        except RuntimeError:
            pass
    for id_data in reversed(created):
        try:
            id_type = id_data.bl_rna.identifier
        except ReferenceError:
            continue  # already freed together with its owner
        coll = {
            "Object": bpy.data.objects, "Armature": bpy.data.armatures, "Mesh": bpy.data.meshes,
            "Material": bpy.data.materials, "Action": bpy.data.actions, "Camera": bpy.data.cameras,
            "MovieClip": bpy.data.movieclips, "Collection": bpy.data.collections, "SunLight": bpy.data.lights,
        }.get(id_type)
        if coll is not None:
            coll.remove(id_data)


def import_motion(motion: hm.HandMotion, options: ImportOptions | None = None, scene=None) -> ImportResult:
    """Build the whole scene for ``motion`` in ``scene`` (default: the context scene).

    Hands that are never present are skipped (with a warning in the result).
    Raises whatever went wrong after removing everything it had created.
    """
    options = options or ImportOptions()
    if options.variant not in hm.VARIANTS:
        raise ValueError(f"variant must be one of {hm.VARIANTS}, not {options.variant!r}")
    scene = scene or bpy.context.scene
    motion.validate()
    created: list = []
    try:
        collection = bpy.data.collections.new(_unique_collection_name(options.name))
        created.append(collection)
        scene.collection.children.link(collection)
        name = collection.name
        root = camera_frame_empty(f"{name}_camera_frame", collection, created)
        result = ImportResult(collection=collection, root=root)
        for side in hm.SIDES:
            if not motion.hands[side].present.any():
                result.warnings.append(f"the {side} hand is never seen in this motion; it was not created")
                continue
            arm, mesh, actions = build_hand(name, motion, side, collection, root, options.low_confidence,
                                            options.variant, created, options.max_influences)
            result.armatures[side], result.meshes[side], result.actions[side] = arm, mesh, actions
        if options.camera:
            result.camera = build_camera(f"{name}_camera", motion, root, collection, created)
            scene.camera = result.camera
            video = options.video_path
            if video is None and isinstance(motion.meta, dict):
                # The pipeline records the video it read as meta["source"].
                video = motion.meta.get("source") or motion.meta.get("source_path")
            if video:
                result.clip = attach_video(result.camera, video, created)
                if result.clip is None:
                    result.warnings.append(f"video {video} not found: the camera has no background")
                else:
                    scene.active_clip = result.clip
        if options.set_scene:
            apply_render_settings(scene, motion)
        if result.camera is not None:
            if options.light:
                result.light = add_key_light(f"{name}_light", result.camera, collection, created)
            if options.clear_view:
                _clear_view(scene, motion, result)
        collection["lagc_variant"] = options.variant
        return result
    except BaseException:
        _remove(created)
        raise


def _clear_view(scene, motion: hm.HandMotion, result: ImportResult) -> None:
    result.hidden = clear_camera_view(scene, result.camera, hands_far_depth(motion), result.collection.all_objects)
    if result.hidden:
        result.warnings.append(f"hid {', '.join(result.hidden)} in the viewport and renders: between the camera "
                               "and the hands, it would hide them (unhide in the Outliner)")


def import_motion_file(path: str, options: ImportOptions | None = None, scene=None) -> ImportResult:
    """Read a HandMotion file (``HandMotionError`` on a bad one) and import it."""
    motion = hm.load(path)
    if options is None:
        options = ImportOptions(name=os.path.splitext(os.path.basename(path))[0] or "LAGC")
    return import_motion(motion, options, scene)


def lagc_objects(scene=None) -> list:
    """Objects of ``scene`` created by the scene writer that carry variant actions."""
    scene = scene or bpy.context.scene
    return [ob for ob in scene.objects if ACTION_PROP.format("raw") in ob.keys()]


def switch_variant(variant: str, scene=None) -> int:
    """Make the ``variant`` ('raw' or 'clean') action active on every LAGC armature.

    Returns how many armatures were switched.
    """
    if variant not in hm.VARIANTS:
        raise ValueError(f"variant must be one of {hm.VARIANTS}, not {variant!r}")
    n = 0
    for ob in lagc_objects(scene):
        action = bpy.data.actions.get(ob[ACTION_PROP.format(variant)])
        if action is not None:
            compat.assign_action(ob, action)
            n += 1
    return n
