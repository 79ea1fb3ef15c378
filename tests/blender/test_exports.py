"""Exports as a game engine or another DCC sees them (issue 16.7): re-imported
with Blender's own FBX and glTF importers into fresh scenes."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bpy
from addon_paths import ext_module

import lagc_synth
from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core.skinning import influence_counts, limit_influences


@pytest.fixture(scope="module")
def motion_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("motion") / "take.npz"
    hm.save(lagc_synth.make_motion(T=30, seed=5, fps=30.0, use_open_hand=True), path)
    return str(path)


def _fresh(fps: int = 24) -> None:
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = fps, 1.0


def test_limit_influences_keeps_the_largest_and_normalises():
    w = np.array([[0.4, 0.3, 0.1, 0.1, 0.05, 0.05], [1.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    out = limit_influences(w, 4)
    assert influence_counts(out).tolist() == [4, 1, 0]
    np.testing.assert_allclose(out.sum(axis=1), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(out[0, :4], np.array([0.4, 0.3, 0.1, 0.1]) / 0.9)
    with pytest.raises(ValueError):
        limit_influences(w, 0)


def test_fbx_has_one_take_per_armature_with_its_own_curves(clean, motion_file, tmp_path):
    export = ext_module(clean, "blender.export")
    out = tmp_path / "out"
    export.write_scene_files(motion_file, str(out), formats=("fbx", "blend"))
    # The .blend (written before FBX pruned the export scene) keeps both variants.
    with bpy.data.libraries.load(str(out / "take.blend")) as (src, _dst):
        assert {"take_hand.L_raw", "take_hand.L_clean", "take_hand.R_raw", "take_hand.R_clean"} <= set(src.actions)
    _fresh(30)
    assert bpy.ops.import_scene.fbx(filepath=str(out / "take.fbx")) == {'FINISHED'}
    compat = ext_module(clean, "blender.compat")
    # The importer names actions "<object>|<take>"; Blender's exporter adds the camera's
    # (constant) lens curves to every take, so count takes and the armatures' actions.
    takes = {a.name.split("|", 1)[1] for a in bpy.data.actions}
    assert len(takes) == 2, sorted(takes)
    actions = [o.animation_data.action for o in bpy.data.objects if o.type == 'ARMATURE']
    assert len(actions) == 2 and len({a.name for a in bpy.data.actions if "hand" in a.name.split("|")[0]}) == 2
    for action in actions:
        paths = {fc.data_path for fc in compat.action_fcurves(action)}
        bones = {p.split('"')[1] for p in paths if p.startswith("pose.bones")}
        suffixes = {b.rsplit(".", 1)[-1] for b in bones}
        assert len(bones) >= 16 and len(suffixes) == 1, (action.name, sorted(bones)[:5])
    assert {a.name.split("|")[0] for a in actions} == {"take_hand.L", "take_hand.R"}


def test_gltf_with_four_influences(clean, motion_file, tmp_path):
    export = ext_module(clean, "blender.export")
    with np.load(motion_file) as z:
        full = z["skin_weights"] if "skin_weights" in z.files else None
    assert full is not None and influence_counts(full).max() > 4  # the model really needs limiting
    out = tmp_path / "out"
    export.write_scene_files(motion_file, str(out), formats=("glb",), max_influences=4)
    _fresh(30)
    assert bpy.ops.import_scene.gltf(filepath=str(out / "take.glb")) == {'FINISHED'}
    meshes = [o for o in bpy.data.objects if o.type == 'MESH' and o.vertex_groups]  # not the bone shapes
    assert len(meshes) == 2
    for ob in meshes:
        per_vertex = [[g.weight for g in v.groups if g.weight > 1e-6] for v in ob.data.vertices]
        assert max(len(w) for w in per_vertex) <= 4
        np.testing.assert_allclose([sum(w) for w in per_vertex], 1.0, atol=2e-3)


def test_gltf_keys_land_on_whole_frames_in_a_24_fps_scene(clean, motion_file, tmp_path):
    export = ext_module(clean, "blender.export")
    compat = ext_module(clean, "blender.compat")
    out = tmp_path / "out"
    export.write_scene_files(motion_file, str(out), formats=("glb",))  # exported at the clip's 30 fps
    _fresh(24)
    assert bpy.ops.import_scene.gltf(filepath=str(out / "take.glb")) == {'FINISHED'}
    assert bpy.context.scene.render.fps / bpy.context.scene.render.fps_base == pytest.approx(30.0)
    frames = np.array([kp.co[0] for a in bpy.data.actions for fc in compat.action_fcurves(a)
                       for kp in fc.keyframe_points])
    assert frames.size > 100
    np.testing.assert_allclose(frames, np.round(frames), atol=1e-3)
    assert os.path.exists(out / "take.glb")


def test_import_operator_limits_influences(clean, motion_file):
    def most(ob):
        return max(sum(1 for g in v.groups if g.weight > 1e-6) for v in ob.data.vertices)

    assert bpy.ops.lagc_hand.import_motion(filepath=motion_file) == {'FINISHED'}
    assert max(most(o) for o in bpy.data.objects if o.type == 'MESH') > 4
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    assert bpy.ops.lagc_hand.import_motion(filepath=motion_file, limit_influences=True) == {'FINISHED'}
    assert max(most(o) for o in bpy.data.objects if o.type == 'MESH') == 4
