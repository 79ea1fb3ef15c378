"""Headless scene files from a HandMotion: ``.blend``, ``.glb``, ``.fbx``, ``.bvh``.

:func:`write_scene_files` is the hook the demo script and the batch command use,
so they build scenes with exactly the add-on's scene writer.  Every file is
written under a temporary name in the output folder and renamed when complete.

What each exporter gets, and why:

* FBX: one take per armature holding only that hand's curves (its active
  motion).  Blender's FBX exporter makes a take of every action whose paths
  resolve on an object, so the inactive variant and the meshes' visibility
  actions (``hide_viewport`` resolves on any object) became extra takes; FBX
  is therefore written last, after those actions are removed from the
  throw-away export scene.
* glTF: the clip's frame rate is written as the scene extra ``lagc_fps``
  (glTF stores seconds, not frames); the add-on's glTF import hook
  (:func:`apply_gltf_fps`) sets the importing scene to that rate, so keys land
  on whole frames.
* ``max_influences=4`` limits skin weights for glTF/FBX/game engines
  (``core/skinning.py``; the error it introduces: ``bench/skin_influences.py``).
"""
from __future__ import annotations

import os
import uuid

import bpy

from ..core.handmotion import HandMotionError
from . import scene as scene_writer

FORMATS = ("blend", "glb", "fbx", "bvh")
#: Scene custom property (a glTF scene extra) holding the clip's frame rate.
FPS_EXTRA = "lagc_fps"
_IO_ADDONS = {"glb": "io_scene_gltf2", "fbx": "io_scene_fbx", "bvh": "io_anim_bvh"}


def enable_io_addons(formats) -> None:
    """Exporters are add-ons: enable the ones ``formats`` need (headless too)."""
    import addon_utils

    for fmt in formats:
        module = _IO_ADDONS.get(fmt)
        if module and module not in bpy.context.preferences.addons:
            addon_utils.enable(module, default_set=True, persistent=True)


def _temp_path(out_dir: str, suffix: str) -> str:
    # The exporters insist on their own extension, so the temp name keeps it.
    return os.path.join(out_dir, f".lagc-{uuid.uuid4().hex[:12]}.part{suffix}")


def _commit(tmp: str, final: str) -> str:
    if not os.path.isfile(tmp):
        raise RuntimeError(f"the exporter wrote no file for {os.path.basename(final)}")
    os.replace(tmp, final)
    return final


def _select_only(objects) -> None:
    for ob in bpy.context.view_layer.objects:
        ob.select_set(False)
    for ob in objects:
        ob.select_set(True)
    bpy.context.view_layer.objects.active = objects[0] if objects else None


def _keep_only_active_actions(result) -> None:
    """Remove every action but each armature's active one (the export scene is
    thrown away afterwards: this is why FBX is written last)."""
    keep = {arm.animation_data.action for arm in result.armatures.values() if arm.animation_data}
    for action in [a for a in bpy.data.actions if a not in keep]:
        bpy.data.actions.remove(action)


def apply_gltf_fps(gltf) -> float | None:
    """glTF import hook: set the scene's frame rate to the file's ``lagc_fps``
    scene extra before the importer turns key times (seconds) into frames.
    Returns the rate set, or ``None`` for files without it (left alone)."""
    from ..core.rig import blender_fps

    data = gltf.data
    scenes = data.scenes or []
    index = data.scene if data.scene is not None else 0
    extras = scenes[index].extras if index < len(scenes) else None
    fps = extras.get(FPS_EXTRA) if isinstance(extras, dict) else None
    if not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
        return None
    render = bpy.context.scene.render
    render.fps, render.fps_base = blender_fps(float(fps))
    print(f"LAGC-Hand: scene frame rate set to the file's {float(fps):g} fps so keys land on whole frames")
    return float(fps)


def _export(fmt: str, tmp: str, result) -> None:
    scene = bpy.context.scene
    if fmt == "blend":
        bpy.ops.wm.save_as_mainfile(filepath=tmp, copy=True, check_existing=False)
    elif fmt == "glb":
        scene[FPS_EXTRA] = scene.render.fps / scene.render.fps_base
        bpy.ops.export_scene.gltf(filepath=tmp, export_format='GLB', export_animations=True, export_skins=True,
                                  export_animation_mode='ACTIVE_ACTIONS', export_extras=True,
                                  check_existing=False)
    elif fmt == "fbx":
        _keep_only_active_actions(result)
        bpy.ops.export_scene.fbx(filepath=tmp, check_existing=False, bake_anim=True, add_leaf_bones=False,
                                 bake_anim_use_all_actions=True, bake_anim_use_nla_strips=False,
                                 object_types={'ARMATURE', 'MESH', 'EMPTY', 'CAMERA'})
    elif fmt == "bvh":
        bpy.ops.export_anim.bvh(filepath=tmp, check_existing=False, frame_start=scene.frame_start,
                                frame_end=scene.frame_end, rotate_mode='NATIVE')


def write_scene_files(motion_path: str, out_dir: str, formats=("blend", "glb"), video_path: str | None = None,
                      variant: str = "clean", name: str | None = None, max_influences: int = 0) -> dict:
    """Build the scene of ``motion_path`` in a fresh empty file and write it out.

    formats:  any of ``blend``, ``glb``, ``fbx``, ``bvh`` (BVH holds one skeleton,
              so it writes ``<name>_left.bvh`` / ``<name>_right.bvh``).
    max_influences: > 0 limits skin weights per vertex (4 for game engines).
    returns:  ``{format: [written paths]}``.
    Raises ``HandMotionError`` for a bad motion file and ``ValueError`` for an
    unknown format, before anything is written.
    """
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown scene format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if not os.path.isfile(motion_path):
        raise HandMotionError(f"{motion_path}: no such file")
    name = name or os.path.splitext(os.path.basename(motion_path))[0]
    os.makedirs(out_dir, exist_ok=True)
    # A fresh empty scene, keeping preferences (and so the enabled add-ons).
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    enable_io_addons(formats)
    result = scene_writer.import_motion_file(
        motion_path, scene_writer.ImportOptions(name=name, variant=variant, video_path=video_path,
                                                max_influences=max_influences))
    written: dict = {}
    for fmt in sorted(formats, key=lambda f: f == "fbx"):  # FBX prunes actions: last
        if fmt == "bvh":
            for side, arm in result.armatures.items():
                _select_only([arm])
                tmp = _temp_path(out_dir, ".bvh")
                _export(fmt, tmp, result)
                written.setdefault(fmt, []).append(_commit(tmp, os.path.join(out_dir, f"{name}_{side}.bvh")))
            continue
        _select_only(list(result.armatures.values()) + list(result.meshes.values()))
        tmp = _temp_path(out_dir, f".{fmt}")
        try:
            _export(fmt, tmp, result)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        written[fmt] = [_commit(tmp, os.path.join(out_dir, f"{name}.{fmt}"))]
    return {f: written[f] for f in formats if f in written}
