"""Headless scene files from a HandMotion: ``.blend``, ``.glb``, ``.fbx``, ``.bvh``.

:func:`write_scene_files` is the hook the demo script and the batch command use,
so they build scenes with exactly the add-on's scene writer.  Every file is
written under a temporary name in the output folder and renamed when complete.
"""
from __future__ import annotations

import os
import uuid

import bpy

from ..core.handmotion import HandMotionError
from . import scene as scene_writer

FORMATS = ("blend", "glb", "fbx", "bvh")
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


def _export(fmt: str, tmp: str, result) -> None:
    scene = bpy.context.scene
    if fmt == "blend":
        bpy.ops.wm.save_as_mainfile(filepath=tmp, copy=True, check_existing=False)
    elif fmt == "glb":
        bpy.ops.export_scene.gltf(filepath=tmp, export_format='GLB', export_animations=True, export_skins=True,
                                  export_animation_mode='ACTIVE_ACTIONS',
                                  check_existing=False)
    elif fmt == "fbx":
        bpy.ops.export_scene.fbx(filepath=tmp, check_existing=False, bake_anim=True, add_leaf_bones=False,
                                 object_types={'ARMATURE', 'MESH', 'EMPTY', 'CAMERA'})
    elif fmt == "bvh":
        bpy.ops.export_anim.bvh(filepath=tmp, check_existing=False, frame_start=scene.frame_start,
                                frame_end=scene.frame_end, rotate_mode='NATIVE')


def write_scene_files(motion_path: str, out_dir: str, formats=("blend", "glb"), video_path: str | None = None,
                      variant: str = "clean", name: str | None = None) -> dict:
    """Build the scene of ``motion_path`` in a fresh empty file and write it out.

    formats:  any of ``blend``, ``glb``, ``fbx``, ``bvh`` (BVH holds one skeleton,
              so it writes ``<name>_left.bvh`` / ``<name>_right.bvh``).
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
        motion_path, scene_writer.ImportOptions(name=name, variant=variant, video_path=video_path))
    written: dict = {}
    for fmt in formats:
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
    return written
