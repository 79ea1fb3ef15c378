"""The Blender camera of ``core.camera.camera_params`` projects exactly like K:
checked on real Workbench renders (the ``bpy`` module) of small squares at known
camera-frame points, for landscape, portrait, off-centre principal points and
fx != fy.

A square parallel to the image plane projects to a rectangle whose centroid is
the projection of the square's centre (the map is a scaling at constant depth),
so the alpha-weighted centroid of its render is exactly ``K @ X`` up to
anti-aliasing noise."""
from __future__ import annotations

import numpy as np
import pytest

from lagc_hand_blender.core import camera

bpy = pytest.importorskip("bpy")

# Camera-frame points (metres, OpenCV axes): one near the centre, two towards the corners.
POINTS = np.array([[0.0, 0.0, 1.0], [-0.25, -0.2, 1.2], [0.3, 0.22, 1.5]])


def _render_squares(K: np.ndarray, size: tuple[int, int], points: np.ndarray, side_px: float, path,
                    params=None) -> np.ndarray:
    """Render a white square of about ``side_px`` pixels at each point with the camera
    ``params`` (default: those of K); returns alpha (H, W) in [0, 1]."""
    import cv2

    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    sc = bpy.context.scene
    p = params or camera.camera_params(K, size)
    cam_data = bpy.data.cameras.new("cam")
    for name, value in p.camera_data_settings().items():
        setattr(cam_data, name, value)
    cam_data.clip_start, cam_data.clip_end = 0.01, 100.0
    cam = bpy.data.objects.new("cam", cam_data)  # identity: looks down world -Z, +Y up
    sc.collection.objects.link(cam)
    sc.camera = cam
    for name, value in p.render_settings().items():
        setattr(sc.render, name, value)
    verts, faces = [], []
    for X in points:
        h = 0.5 * side_px * X[2] / K[0, 0]
        base = len(verts)
        for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h)):
            # OpenCV camera frame (x, y, z) -> Blender world (x, -y, -z) for this camera.
            verts.append((X[0] + dx, -(X[1] + dy), -X[2]))
        faces.append((base, base + 1, base + 2, base + 3))
    me = bpy.data.meshes.new("squares")
    me.from_pydata(verts, [], faces)
    sc.collection.objects.link(bpy.data.objects.new("squares", me))
    sc.render.engine = 'BLENDER_WORKBENCH'
    sc.display.render_aa = '32'
    sc.display.shading.light = 'FLAT'
    sc.render.film_transparent = True
    sc.render.image_settings.file_format = 'PNG'
    sc.render.image_settings.color_mode = 'RGBA'
    sc.render.image_settings.color_depth = '16'
    sc.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.shape[:2] == (size[1], size[0])
    return img[:, :, 3].astype(np.float64) / 65535.0


def _centroid(alpha: np.ndarray, near: np.ndarray, radius: int) -> np.ndarray:
    """Alpha-weighted centroid (pixel centres at i + 0.5) of the window around ``near``."""
    H, W = alpha.shape
    x0, y0 = max(0, int(near[0]) - radius), max(0, int(near[1]) - radius)
    x1, y1 = min(W, int(near[0]) + radius + 1), min(H, int(near[1]) + radius + 1)
    a = alpha[y0:y1, x0:x1]
    assert a.sum() > 1.0, f"nothing rendered near {near}"
    ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
    return np.array([(a * xs).sum(), (a * ys).sum()]) / a.sum()


CASES = {
    "landscape, centred": ((160, 120), camera.pinhole(150.0, 150.0, 80.0, 60.0)),
    "portrait, centred": ((120, 160), camera.pinhole(140.0, 140.0, 60.0, 80.0)),
    "portrait, off-centre": ((120, 168), camera.pinhole(130.0, 130.0, 41.3, 101.7)),
    "landscape, off-centre": ((176, 112), camera.pinhole(160.0, 160.0, 101.2, 38.9)),
    "fx > fy, off-centre": ((160, 120), camera.pinhole(170.0, 120.0, 70.4, 66.1)),
    "fx < fy, portrait": ((112, 160), camera.pinhole(110.0, 150.0, 60.7, 75.3)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_blender_camera_reproduces_K(case, tmp_path):
    size, K = CASES[case]
    alpha = _render_squares(K, size, POINTS, side_px=6.0, path=tmp_path / "r.png")
    expected = camera.project(K, POINTS)
    assert np.all((expected > 8) & (expected < np.array(size) - 8)), "test points must lie inside the image"
    got = np.array([_centroid(alpha, e, radius=8) for e in expected])
    err = np.linalg.norm(got - expected, axis=1)
    # Measured: <= 0.15 px, a constant ~(+0.05, -0.08) px from Workbench's anti-aliasing pattern;
    # a pixel-convention slip would show as 0.5 px.
    assert err.max() < 0.25, f"{case}: rendered {got.round(3)} vs K X {expected.round(3)} (error {err.round(3)} px)"
    # The settings round-trip to the same K.
    np.testing.assert_allclose(camera.intrinsics_from_camera(camera.camera_params(K, size)), K, atol=1e-9)


@pytest.mark.parametrize("case", ["portrait, off-centre", "fx < fy, portrait"])
def test_addon_camera_rig_reproduces_K(case, tmp_path):
    """The add-on's own rig (camera-frame empty + build_camera + apply_render_settings):
    squares given in OpenCV camera coordinates under the empty land on K @ X."""
    import types

    import cv2
    from lagc_hand_blender.blender import camera as addon_camera

    size, K = CASES[case]
    motion = types.SimpleNamespace(intrinsics=K, image_size=size, fps=30.0, frames=np.arange(3), num_frames=3)
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    sc = bpy.context.scene
    created: list = []
    empty = addon_camera.camera_frame_empty("rig", sc.collection, created)
    cam = addon_camera.build_camera("cam", motion, empty, sc.collection, created)
    addon_camera.apply_render_settings(sc, motion)
    sc.camera = cam
    verts, faces = [], []
    for X in POINTS:
        h = 0.5 * 6.0 * X[2] / K[0, 0]
        base = len(verts)
        verts += [(X[0] + dx, X[1] + dy, X[2]) for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h))]
        faces.append((base, base + 1, base + 2, base + 3))
    me = bpy.data.meshes.new("squares")
    me.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new("squares", me)
    sc.collection.objects.link(obj)
    obj.parent = empty  # camera-frame coordinates, as the hands are
    sc.render.engine = 'BLENDER_WORKBENCH'
    sc.display.render_aa = '32'
    sc.render.film_transparent = True
    sc.render.image_settings.color_mode = 'RGBA'
    sc.render.image_settings.color_depth = '16'
    sc.render.filepath = str(tmp_path / "rig.png")
    bpy.ops.render.render(write_still=True)
    alpha = cv2.imread(str(tmp_path / "rig.png"), cv2.IMREAD_UNCHANGED)[:, :, 3] / 65535.0
    expected = camera.project(K, POINTS)
    got = np.array([_centroid(alpha, e, radius=8) for e in expected])
    assert np.linalg.norm(got - expected, axis=1).max() < 0.25, (got, expected)


def test_shift_in_units_of_the_larger_side_misses_in_portrait(tmp_path):
    """The other convention (shift / max(W, H), which the synthetic renderer used)
    misplaces an off-centre portrait principal point; the render shows it."""
    size, K = CASES["portrait, off-centre"]
    p = camera.camera_params(K, size)
    p.shift_x, p.shift_y = (size[0] / 2 - K[0, 2]) / max(size), (K[1, 2] - size[1] / 2) / max(size)
    alpha = _render_squares(K, size, POINTS, side_px=6.0, path=tmp_path / "r.png", params=p)
    expected = camera.project(K, POINTS)
    got = np.array([_centroid(alpha, e, radius=12) for e in expected])
    assert np.linalg.norm(got - expected, axis=1).min() > 1.5


def test_bad_intrinsics_are_refused():
    for bad in (np.eye(2), [[0, 0, 1], [0, 1, 1], [0, 0, 1]], [[1, 0.1, 1], [0, 1, 1], [0, 0, 1]],
                [[1, 0, np.nan], [0, 1, 1], [0, 0, 1]]):
        with pytest.raises(camera.CameraError):
            camera.check_intrinsics(np.asarray(bad, float))
    with pytest.raises(camera.CameraError):
        camera.camera_params(camera.pinhole(1000.0, 1.0, 1, 1), (10, 10))


def test_fov_and_focal_agree():
    K = camera.intrinsics_for(640, 480, focal_mm=36.0)
    assert K[0, 0] == pytest.approx(640.0) and K[0, 2] == 320.0 and K[1, 2] == 240.0
    assert camera.horizontal_fov_deg(camera.intrinsics_for(640, 480, fov_deg=73.0), 640) == pytest.approx(73.0)
    # The principal point does not change the field of view.
    assert camera.horizontal_fov_deg(camera.pinhole(320, 320, 10, 10), 640) == pytest.approx(90.0)
