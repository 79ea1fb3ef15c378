"""The add-on in the real ``bpy`` module: build, install, register, scene writer.

Runs under bpy 5.0.1 here and, through ``test_blender_versions.py``, under the
other Blender versions whose venvs exist (4.5, 4.2).
"""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

import bpy
from addon_paths import REPO, ext_module

import lagc_synth
from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core.rotations import quat_angle_between

SAMPLES = (0, 4, 9, 16, 27, 39)  # right hand absent on 10..14, left on 0..2


@pytest.fixture(scope="module")
def motion():
    return lagc_synth.make_motion(T=40, seed=3)


def _count_ids():
    return {k: len(getattr(bpy.data, k)) for k in
            ("objects", "armatures", "meshes", "actions", "materials", "cameras", "collections", "movieclips")}


# ----------------------------------------------------------------------------- build / install


def test_built_zip_is_a_valid_extension(ext, tmp_path):
    import build

    zip_path = build.build(tmp_path)
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        manifest = z.read("blender_manifest.toml").decode()
        sources = {n: z.read(n).decode() for n in names if n.endswith(".py")}
    # the version is written once, in pyproject.toml: the zip name and its manifest follow it
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert zip_path.name == f"lagc_hand-{version}.zip"
    assert tomllib.loads(manifest)["version"] == version
    assert 'id = "lagc_hand"' in manifest and "[permissions]" in manifest
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert {"__init__.py", "client.py", "jobs.py", "blender/scene.py", "core/handmotion.py"} <= set(names)
    assert not any("bl_info" in src for src in sources.values())
    assert "import bpy" not in sources["__init__.py"]  # the backend imports the package without Blender
    assert not any("import torch" in src for src in sources.values())


def test_blender_validator_rejects_a_bad_manifest(tmp_path):
    import build

    pkg = build.stage(tmp_path)
    manifest = pkg / "blender_manifest.toml"
    manifest.write_text(manifest.read_text().replace('tagline = "', 'tagline = "Ends with a period.'))
    with pytest.raises(build.BuildError, match="tagline"):
        build._run_tool(build.find_blender_ext(), ["validate", str(pkg)])


def test_register_unregister_twice(ext):
    import addon_utils

    name = ext.__name__
    for _ in range(2):
        addon_utils.disable(name, default_set=True)
        assert "lagc_hand" not in bpy.types.Scene.bl_rna.properties
        assert not hasattr(bpy.types, "VIEW3D_PT_lagc_hand")
        assert not hasattr(bpy.types, "LAGC_HAND_OT_reconstruct")
        addon_utils.enable(name, default_set=True)
        assert "lagc_hand" in bpy.types.Scene.bl_rna.properties
        assert hasattr(bpy.types, "VIEW3D_PT_lagc_hand")
        assert hasattr(bpy.types, "LAGC_HAND_OT_reconstruct")
        prefs = bpy.context.preferences.addons[name].preferences
        assert prefs.backend_url.startswith("http://127.0.0.1")


# ----------------------------------------------------------------------------- scene writer


def test_structure(clean, motion):
    scene_mod = ext_module(clean, "blender.scene")
    compat = ext_module(clean, "blender.compat")
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="T"))
    assert set(result.armatures) == {"left", "right"}
    for side, suffix in (("left", "L"), ("right", "R")):
        arm, mesh = result.armatures[side], result.meshes[side]
        bones = arm.data.bones
        assert len(bones) == 21
        assert bones[f"index1.{suffix}"].parent.name == f"wrist.{suffix}"
        assert bones[f"index_tip.{suffix}"].parent.name == f"index3.{suffix}"
        assert bones[f"thumb3.{suffix}"].parent.name == f"thumb2.{suffix}"
        assert all(pb.rotation_mode == 'QUATERNION' for pb in arm.pose.bones)
        for variant in ("raw", "clean"):
            action = result.actions[side][variant]
            # 16 bones x 4 quaternion channels + 3 root location + confidence + visibility
            assert len(compat.action_fcurves(action)) == 16 * 4 + 3 + 1 + 1
        assert arm.animation_data.action == result.actions[side]["clean"]
        assert len(mesh.vertex_groups) == 16
        assert mesh.modifiers["Armature"].object == arm
        assert mesh.parent == arm and arm.parent == result.root
        assert all(p.use_smooth for p in mesh.data.polygons)
        assert mesh.data.materials[0].name.startswith("LAGC skin")
        assert len(compat.action_fcurves(mesh.animation_data.action)) == 2
    # Mirror tools pair the two hands' bones by their .L/.R names.
    assert bpy.utils.flip_name("index2.L") == "index2.R"


def _key_values(compat, action, path, n_channels, frames):
    out = np.zeros((len(frames), n_channels))
    for c in range(n_channels):
        fc = compat.find_fcurve(action, path, c)
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        co = co.reshape(-1, 2)
        for i, f in enumerate(frames):
            hit = np.nonzero(np.abs(co[:, 0] - f) < 1e-3)[0]
            assert hit.size == 1, f"{path}[{c}] has no key at frame {f}"
            out[i, c] = co[hit[0], 1]
    return out


def test_keys_convert_back_to_the_motion(clean, motion):
    scene_mod = ext_module(clean, "blender.scene")
    compat = ext_module(clean, "blender.compat")
    rig = ext_module(clean, "core.rig")
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="K"))
    for side in ("left", "right"):
        hand = motion.hands[side]
        arm = result.armatures[side]
        names = rig.bone_names(side)
        rest = np.array([np.array(arm.data.bones[n].matrix_local)[:3, :3] for n in names[:16]])
        idx = [i for i in SAMPLES if hand.present[i]]
        frames = motion.frames[idx] + 1
        for variant in ("raw", "clean"):
            action = result.actions[side][variant]
            bone_q = np.stack([_key_values(compat, action, f'pose.bones["{n}"].rotation_quaternion', 4, frames)
                               for n in names[:16]], axis=1)
            back = rig.bone_quats_to_motion(bone_q, rest)
            want = hand.variant(variant).quats[idx]
            assert np.max(quat_angle_between(back, want)) < 1e-4
            loc = _key_values(compat, action, f'pose.bones["{names[0]}"].location', 3, frames)
            root = loc @ rest[0].T + hand.rest_joints[0]
            np.testing.assert_allclose(root, hand.variant(variant).root[idx], atol=1e-5)
            # Absent frames carry no pose keys (the hand is hidden there instead).
            fc = compat.find_fcurve(action, f'pose.bones["{names[3]}"].rotation_quaternion', 0)
            assert len(fc.keyframe_points) == int(hand.present.sum())


def test_blender_pose_and_skin_match_forward_kinematics(clean, motion):
    """What Blender evaluates (bone heads, deformed mesh) equals an independent FK + LBS."""
    scene_mod = ext_module(clean, "blender.scene")
    rig = ext_module(clean, "core.rig")
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="F"))
    scene = bpy.context.scene
    for variant in ("clean", "raw"):
        assert bpy.ops.lagc_hand.switch_variant(variant=variant) == {'FINISHED'}
        for side in ("left", "right"):
            hand = motion.hands[side]
            v = hand.variant(variant)
            tips = hand.rest_vertices[hand.tip_vertex_ids].astype(np.float64)
            posed, world_rot = lagc_synth.forward_kinematics(v.quats.astype(np.float64), v.root.astype(np.float64),
                                                             hand.rest_joints.astype(np.float64), tips)
            arm, mesh = result.armatures[side], result.meshes[side]
            names = rig.bone_names(side)
            for i in (j for j in SAMPLES if hand.present[j]):
                scene.frame_set(int(motion.frames[i]) + 1)
                heads = np.array([arm.pose.bones[n].head for n in names])
                np.testing.assert_allclose(heads, posed[i], atol=1e-5)
                dg = bpy.context.evaluated_depsgraph_get()
                m = mesh.evaluated_get(dg).to_mesh()
                co = np.zeros(3 * len(m.vertices), dtype=np.float32)
                m.vertices.foreach_get("co", co)
                mesh.evaluated_get(dg).to_mesh_clear()
                j = np.argmax(motion.skin_weights, axis=1)  # the synthetic mesh is rigidly weighted
                rest_v = hand.rest_vertices.astype(np.float64)
                want = np.einsum("vab,vb->va", world_rot[i][j], rest_v - hand.rest_joints[j]) + posed[i][j]
                np.testing.assert_allclose(co.reshape(-1, 3), want, atol=1e-5)


def test_visibility_and_confidence(clean, motion):
    scene_mod = ext_module(clean, "blender.scene")
    compat = ext_module(clean, "blender.compat")
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="V", low_confidence=0.5))
    for side in ("left", "right"):
        hand = motion.hands[side]
        frames = motion.frames + 1
        mesh_action = result.meshes[side].animation_data.action
        arm_action = result.actions[side]["clean"]
        for action, path in ((mesh_action, "hide_viewport"), (mesh_action, "hide_render"), (arm_action, "hide_viewport")):
            fc = compat.find_fcurve(action, path, 0)
            hidden = np.array([fc.evaluate(float(f)) for f in frames]) > 0.5
            np.testing.assert_array_equal(hidden, ~hand.present)
        conf = compat.find_fcurve(arm_action, '["lagc_confidence"]', 0)
        np.testing.assert_allclose([conf.evaluate(float(f)) for f in frames], hand.confidence, atol=1e-6)
        fc = compat.find_fcurve(arm_action, f'pose.bones["wrist.{"L" if side == "left" else "R"}"].rotation_quaternion', 0)
        types = [k.type for k in fc.keyframe_points]
        want = ['JITTER' if c < 0.5 else 'KEYFRAME' for c in hand.confidence[hand.present]]
        assert types == want
    # Frame 11..15 (samples 10..14): the right hand is hidden, the left one shown.
    bpy.context.scene.frame_set(int(motion.frames[12]) + 1)
    assert result.meshes["right"].hide_viewport and result.meshes["right"].hide_render
    assert not result.meshes["left"].hide_viewport


def test_camera_matches_intrinsics(clean):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene_mod = ext_module(clean, "blender.scene")
    motion = lagc_synth.make_motion(T=20, seed=5, stride=2, fps=29.97, image_size=(1280, 720))
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="C"))
    scene = bpy.context.scene
    assert scene.camera == result.camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1280, 720)
    assert abs(scene.render.fps / scene.render.fps_base - 29.97) < 1e-4  # source rate, stride undone
    assert (scene.frame_start, scene.frame_end) == (motion.frames[0] + 1, motion.frames[-1] + 1)
    scene.frame_set(scene.frame_start)
    K = motion.intrinsics
    w, h = motion.image_size
    pts = motion.hands["right"].clean.keypoints3d[0].astype(np.float64)
    empty = result.root.matrix_world
    for p in pts:
        ndc = world_to_camera_view(scene, result.camera, empty @ Vector(p.tolist()))
        px = np.array([ndc.x * w, (1.0 - ndc.y) * h])  # Blender's origin is bottom-left
        want = (K @ p)[:2] / p[2]
        np.testing.assert_allclose(px, want, atol=1e-2)


def test_video_background(clean, motion, tmp_path):
    scene_mod = ext_module(clean, "blender.scene")
    missing = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="M", video_path=str(tmp_path / "no.mp4")))
    assert missing.clip is None and any("not found" in w for w in missing.warnings)
    cv2 = pytest.importorskip("cv2", reason="needs OpenCV to write a test video")
    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, motion.image_size)
    for i in range(50):
        writer.write(np.full((motion.image_size[1], motion.image_size[0], 3), i * 4, np.uint8))
    writer.release()
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="B", video_path=video))
    bg = result.camera.data.background_images[0]
    assert bg.source == 'MOVIE_CLIP' and bg.clip == result.clip and result.clip.frame_start == 1
    assert result.camera.data.show_background_images
    assert tuple(result.clip.size) == motion.image_size and result.clip.frame_duration == 50
    assert bpy.context.scene.active_clip == result.clip


def test_bad_file_reports_and_leaves_scene_untouched(clean, motion, tmp_path):
    path = tmp_path / "broken.npz"
    hm.save(motion, path)
    path.write_bytes(path.read_bytes()[:1000])  # truncated download
    before = _count_ids()
    with pytest.raises(RuntimeError, match="damaged or truncated"):
        bpy.ops.lagc_hand.import_motion(filepath=str(path))
    assert _count_ids() == before


def test_failure_mid_build_removes_everything(clean, motion, monkeypatch):
    scene_mod = ext_module(clean, "blender.scene")
    hand_mod = ext_module(clean, "blender.hand")
    real = hand_mod.write_hand_actions
    calls = []

    def fail_on_second_hand(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")  # stands in for any error deep in the build
        return real(*args, **kwargs)

    monkeypatch.setattr(hand_mod, "write_hand_actions", fail_on_second_hand)
    before = _count_ids()
    with pytest.raises(RuntimeError, match="disk full"):
        scene_mod.import_motion(motion, scene_mod.ImportOptions(name="X"))
    assert len(calls) == 2  # the first hand was complete when it failed
    assert _count_ids() == before


def test_import_operator_and_variant_switch(clean, motion, tmp_path):
    path = tmp_path / "take1.npz"
    hm.save(motion, path)
    assert bpy.ops.lagc_hand.import_motion(filepath=str(path), variant='raw') == {'FINISHED'}
    arm = bpy.data.objects["take1_hand.R"]
    assert arm.animation_data.action.name == "take1_hand.R_raw"
    bpy.context.scene.lagc_hand.variant = 'clean'  # the panel's switch
    assert arm.animation_data.action.name == "take1_hand.R_clean"
    assert bpy.data.actions["take1_hand.R_raw"].use_fake_user  # survives saving while inactive


# ----------------------------------------------------------------------------- exports


def _world_heads(arm, names):
    return np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])


def _pairwise(x):
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_exports_round_trip(clean, motion, tmp_path):
    export = ext_module(clean, "blender.export")
    rig = ext_module(clean, "core.rig")
    path = tmp_path / "rt.npz"
    hm.save(motion, path)
    out = tmp_path / "out"
    written = export.write_scene_files(str(path), str(out), formats=("blend", "glb", "fbx", "bvh"))
    assert sorted(os.listdir(out)) == ["rt.blend", "rt.fbx", "rt.glb", "rt_left.bvh", "rt_right.bvh"]
    assert written["bvh"] == [str(out / "rt_left.bvh"), str(out / "rt_right.bvh")]
    names = rig.bone_names("right")
    sample = 27
    frame = int(motion.frames[sample]) + 1
    hand = motion.hands["right"]
    tips = hand.rest_vertices[hand.tip_vertex_ids].astype(np.float64)
    posed, _ = lagc_synth.forward_kinematics(hand.clean.quats.astype(np.float64), hand.clean.root.astype(np.float64),
                                             hand.rest_joints.astype(np.float64), tips)
    want = _pairwise(posed[sample])

    def check(arm, label):
        assert arm is not None, f"{label}: no right-hand armature came back"
        assert {n for n in names} <= set(arm.data.bones.keys()), label
        bpy.context.scene.frame_set(frame)
        np.testing.assert_allclose(_pairwise(_world_heads(arm, names)), want, atol=2e-4, err_msg=label)

    def right_arm():
        return next((o for o in bpy.context.scene.objects if o.type == 'ARMATURE' and "wrist.R" in o.data.bones), None)

    for fmt, load in (
        ("glb", lambda p: bpy.ops.import_scene.gltf(filepath=p)),
        # The FBX importer moves the first key to frame ``anim_offset``.
        ("fbx", lambda p: bpy.ops.import_scene.fbx(filepath=p, anim_offset=float(motion.frames[0] + 1))),
        ("blend", lambda p: bpy.ops.wm.open_mainfile(filepath=p)),
    ):
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
        bpy.context.scene.render.fps = 30  # importers map seconds to frames at the scene's rate
        assert load(str(out / f"rt.{fmt}")) == {'FINISHED'}
        arm = right_arm()
        assert arm is not None and arm.animation_data and arm.animation_data.action, fmt
        check(arm, fmt)
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    assert bpy.ops.import_anim.bvh(filepath=str(out / "rt_right.bvh"), frame_start=int(motion.frames[0]) + 1,
                                   use_fps_scale=False, update_scene_duration=True) == {'FINISHED'}
    check(right_arm(), "bvh")


def test_open_hand_model_skins_like_linear_blend_skinning(clean):
    """With the project's open hand model (smooth weights), Blender's Armature
    modifier deforms the mesh exactly as linear blend skinning of the motion."""
    if not os.path.exists(lagc_synth.OPEN_HAND):
        pytest.skip("assets/open_hand_right.npz not generated yet")
    scene_mod = ext_module(clean, "blender.scene")
    motion = lagc_synth.make_motion(T=12, seed=11, use_open_hand=True)
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="O"))
    W = motion.skin_weights.astype(np.float64)
    for side in ("left", "right"):
        hand = motion.hands[side]
        rest_v = hand.rest_vertices.astype(np.float64)
        J = hand.rest_joints.astype(np.float64)
        posed, A = lagc_synth.forward_kinematics(hand.clean.quats.astype(np.float64), hand.clean.root.astype(np.float64),
                                                 J, rest_v[hand.tip_vertex_ids])
        i = 8
        bpy.context.scene.frame_set(int(motion.frames[i]) + 1)
        mesh = result.meshes[side]
        assert len(mesh.data.vertices) == rest_v.shape[0] and len(mesh.data.polygons) == motion.faces.shape[0]
        dg = bpy.context.evaluated_depsgraph_get()
        m = mesh.evaluated_get(dg).to_mesh()
        co = np.zeros(3 * len(m.vertices), dtype=np.float32)
        m.vertices.foreach_get("co", co)
        mesh.evaluated_get(dg).to_mesh_clear()
        per_joint = np.einsum("jab,vjb->vja", A[i], rest_v[:, None] - J[None]) + posed[i][None, :16]
        want = np.einsum("vj,vja->va", W, per_joint)
        np.testing.assert_allclose(co.reshape(-1, 3), want, atol=2e-5)


def test_video_plate_fills_the_camera_view(clean, tmp_path):
    from bpy_extras.object_utils import world_to_camera_view

    scene_mod = ext_module(clean, "blender.scene")
    preview = ext_module(clean, "blender.preview")
    motion = lagc_synth.make_motion(T=8, seed=2, image_size=(800, 450))
    video = tmp_path / "plate.mp4"
    video.write_bytes(b"\x00" * 64)  # any file: Blender opens the movie lazily, at render time
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="P", video_path=""))
    plate = preview.add_video_plate(result, motion, str(video), depth=4.0)
    bpy.context.view_layer.update()
    corners = [world_to_camera_view(bpy.context.scene, result.camera, plate.matrix_world @ v.co)
               for v in plate.data.vertices]
    np.testing.assert_allclose([(c.x, c.y) for c in corners], [(0, 1), (1, 1), (1, 0), (0, 0)], atol=1e-5)
    assert all(abs(c.z - 4.0) < 1e-4 for c in corners)
