"""Imported hands are visible in Blender's default scene (issue 16.3): the
default cube no longer hides them, and they render well lit in EEVEE and
Workbench (real renders with bpy)."""
from __future__ import annotations

import numpy as np
import pytest

import bpy
from addon_paths import ext_module
from bpy_extras.object_utils import world_to_camera_view

import lagc_synth
from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core.frustum import box_may_be_visible, frustum_planes

EEVEE = 'BLENDER_EEVEE_NEXT' if (4, 2, 0) <= bpy.app.version < (5, 0, 0) else 'BLENDER_EEVEE'


def test_frustum_box_test():
    frame = np.array([[1, 1, -2], [-1, 1, -2], [-1, -1, -2], [1, -1, -2]], float)  # 90 degree view
    planes = frustum_planes(frame, 0.1, 5.0)
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    assert box_may_be_visible(cube, planes)                                  # around the camera
    assert box_may_be_visible(cube * 0.1 + [0, 0, -3], planes)               # straight ahead
    assert not box_may_be_visible(cube * 0.1 + [0, 0, 3], planes)            # behind
    assert not box_may_be_visible(cube * 0.1 + [0, 0, -8], planes)           # beyond far
    assert not box_may_be_visible(cube * 0.1 + [4, 0, -2], planes)           # off to the side


@pytest.fixture
def default_scene(ext):
    """Blender's factory startup scene: Cube at the origin, Light, Camera."""
    bpy.ops.wm.read_homefile(use_factory_startup=True)
    assert "Cube" in bpy.data.objects
    return ext


def _hand_pixels(scene, meshes, w, h) -> np.ndarray:
    """(h, w) mask of the pixels the hands' evaluated vertices project to."""
    dg = bpy.context.evaluated_depsgraph_get()
    mask = np.zeros((h, w), bool)
    for ob in meshes:
        ev = ob.evaluated_get(dg)
        me = ev.to_mesh()
        for v in me.vertices:
            p = world_to_camera_view(scene, scene.camera, ev.matrix_world @ v.co)
            x, y = int(p.x * w), int((1.0 - p.y) * h)
            if 0 <= x < w and 0 <= y < h and p.z > 0:
                mask[y, x] = True
        ev.to_mesh_clear()
    return mask


def _render(scene, engine, path) -> np.ndarray:
    scene.render.engine = engine
    if engine != 'BLENDER_WORKBENCH':
        scene.eevee.taa_render_samples = 4
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGBA'
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(path))
    px = np.array(img.pixels[:], dtype=np.float32).reshape(img.size[1], img.size[0], 4)[::-1]
    bpy.data.images.remove(img)
    return px


def test_default_scene_does_not_hide_the_hands_and_they_render_lit(default_scene, tmp_path):
    scene_mod = ext_module(default_scene, "blender.scene")
    motion = lagc_synth.make_motion(T=12, seed=2, use_open_hand=True, image_size=(160, 120))
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="take"))
    cube = bpy.data.objects["Cube"]
    assert result.hidden == ["Cube"] and cube.hide_render and cube.hide_get()
    assert any("Cube" in w for w in result.warnings)
    assert result.camera.name in result.collection.objects and result.light.name in result.collection.objects
    scene = bpy.context.scene
    scene.frame_set(int(motion.frames[6]) + 1)
    scene.render.resolution_percentage = 50  # 80 x 60
    w, h = scene.render.resolution_x // 2, scene.render.resolution_y // 2
    mask = _hand_pixels(scene, result.meshes.values(), w, h)
    assert mask.sum() > 20, "the hands are not in the camera's view"
    for engine in ('BLENDER_WORKBENCH', EEVEE):
        px = _render(scene, engine, tmp_path / f"{engine}.png")
        assert px.shape[:2] == (h, w)
        lum = px[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
        hands_alpha = px[..., 3][mask].mean()
        print(f"{engine}: mean luminance over {mask.sum()} hand pixels {lum[mask].mean():.3f}, "
              f"alpha {hands_alpha:.2f}; opaque pixels elsewhere {(px[..., 3][~mask] > 0.5).mean():.2f}")
        assert hands_alpha > 0.9, f"{engine}: the hands are not rendered where they project"
        assert lum[mask].mean() > 0.2, f"{engine}: the hands render near-black"
        # Nothing but the hands in the frame (the cube no longer fills it).
        assert (px[..., 3][~mask] > 0.5).mean() < 0.5


def test_hands_are_lit_in_an_empty_scene(clean, tmp_path):
    """No lights and no world (batch's fresh scene): the added sun still lights the hands."""
    scene_mod = ext_module(clean, "blender.scene")
    motion = lagc_synth.make_motion(T=12, seed=2, use_open_hand=True, image_size=(160, 120))
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="take"))
    assert result.hidden == []
    scene = bpy.context.scene
    scene.frame_set(int(motion.frames[6]) + 1)
    scene.render.resolution_percentage = 50
    w, h = scene.render.resolution_x // 2, scene.render.resolution_y // 2
    mask = _hand_pixels(scene, result.meshes.values(), w, h)
    px = _render(scene, EEVEE, tmp_path / "eevee.png")
    lum = (px[..., :3] @ np.array([0.2126, 0.7152, 0.0722]))[mask].mean()
    print(f"empty scene, {EEVEE}: mean luminance over the hands {lum:.3f}")
    assert lum > 0.2
