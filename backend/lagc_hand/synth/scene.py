"""Minimal Blender (``bpy``) scenes for rendering hand meshes: camera with
known intrinsics, skin material, plain lighting, neutral background.

Geometry is given in the **OpenCV camera frame** (metres; x right, y down,
z forward).  The Blender camera sits at the world origin with identity
rotation, looking down its ``-Z`` with ``+Y`` up, so a camera-frame point
``(x, y, z)`` is the world point ``(x, -y, -z)``.

Only plain functions (no operators that need a window), so it runs headless
under the ``bpy`` module.  Importing this module imports ``bpy``.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from lagc_hand_blender.core import camera as pinhole

#: OpenCV camera frame -> Blender world (camera at the origin, looking down -Z).
CV_TO_BLENDER = np.diag([1.0, -1.0, -1.0])


@dataclass
class CameraIntrinsics:
    """Pinhole camera, pixels.  ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, square pixels."""

    width: int
    height: int
    fx: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:
        return pinhole.pinhole(self.fx, self.fx, self.cx, self.cy)

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> "CameraIntrinsics":
        return cls(width, height, float(pinhole.fov_to_focal_px(width, hfov_deg)), width / 2.0, height / 2.0)

    def project(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` camera-frame points -> ``(..., 2)`` pixels (x right, y down)."""
        return pinhole.project(self.K, points)


def new_scene(cam: CameraIntrinsics, samples: int = 8, background=(0.42, 0.44, 0.46),
              threads: int = 2, denoise: bool = False) -> bpy.types.Scene:
    """Empty factory scene with a Cycles CPU set-up and the camera."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = denoise
    scene.cycles.max_bounces = 3
    scene.cycles.diffuse_bounces = 2
    scene.cycles.glossy_bounces = 1
    scene.cycles.transmission_bounces = 0
    scene.cycles.transparent_max_bounces = 0
    scene.cycles.seed = 0
    r.threads_mode = "FIXED"
    r.threads = threads
    r.resolution_x, r.resolution_y = cam.width, cam.height
    r.resolution_percentage = 100
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGB"
    r.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("World")
    scene.world = world
    if world.node_tree is None:  # Blender < 5 creates worlds without nodes
        world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (*background, 1.0)
    bg.inputs["Strength"].default_value = 1.0
    _add_camera(scene, cam)
    return scene


def _add_camera(scene, cam: CameraIntrinsics) -> None:
    data = bpy.data.cameras.new("Camera")
    for attr, value in pinhole.camera_params(cam.K, (cam.width, cam.height)).camera_data_settings().items():
        setattr(data, attr, value)
    data.clip_start = 0.01
    data.clip_end = 100.0
    obj = bpy.data.objects.new("Camera", data)
    scene.collection.objects.link(obj)
    scene.camera = obj


def add_lights(scene, key=(0.4, -0.8, -0.2), strength: float = 3.0) -> None:
    """A soft sun from ``key`` (camera-frame direction *towards* the light) plus the world fill."""
    data = bpy.data.lights.new("Key", type="SUN")
    data.energy = strength
    data.angle = np.radians(25.0)
    obj = bpy.data.objects.new("Key", data)
    d = CV_TO_BLENDER @ np.asarray(key, float)
    d /= np.linalg.norm(d)
    # a sun shines along its local -Z: rotate -Z onto -d
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = _quat_from_to(np.array([0.0, 0.0, 1.0]), d)
    scene.collection.objects.link(obj)


def _quat_from_to(a: np.ndarray, b: np.ndarray) -> tuple:
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    w = 1.0 + float(a @ b)
    if w < 1e-8:  # opposite: any perpendicular axis
        v = np.cross(a, [1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.cross(a, [0.0, 1.0, 0.0])
        w = 0.0
    q = np.array([w, *v])
    return tuple(q / np.linalg.norm(q))


def skin_material(name: str = "Skin", color=(0.80, 0.52, 0.40)) -> bpy.types.Material:
    """Principled skin: warm base colour, soft sheen-free roughness, a little subsurface."""
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5 creates materials without nodes
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.55
    for key in ("Subsurface Weight", "Subsurface"):
        if key in bsdf.inputs:
            bsdf.inputs[key].default_value = 0.15
            break
    if "Subsurface Radius" in bsdf.inputs:
        bsdf.inputs["Subsurface Radius"].default_value = (0.006, 0.003, 0.002)
    if "Subsurface Scale" in bsdf.inputs:
        bsdf.inputs["Subsurface Scale"].default_value = 0.01
    return mat


def add_mesh(scene, name: str, verts_cv: np.ndarray, faces: np.ndarray, material=None,
             smooth: bool = True) -> bpy.types.Object:
    """Mesh object from camera-frame vertices ``(V, 3)`` and faces ``(F, 3)``."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata((np.asarray(verts_cv, float) @ CV_TO_BLENDER.T).tolist(), [], np.asarray(faces).tolist())
    mesh.update()
    if smooth:
        mesh.shade_smooth()
    if material is not None:
        mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    return obj


def set_mesh_vertices(obj, verts_cv: np.ndarray) -> None:
    """Move an existing mesh's vertices (camera frame) in place."""
    co = (np.asarray(verts_cv, np.float64) @ CV_TO_BLENDER.T).astype(np.float32).ravel()
    obj.data.vertices.foreach_set("co", co)
    obj.data.update()


def render_to_array(scene, path: str | os.PathLike | None = None) -> np.ndarray:
    """Render the current frame; returns ``(H, W, 3)`` uint8 RGB.  Writes
    ``path`` (PNG) if given, else a temp file that is removed."""
    import cv2

    tmp = None
    if path is None:
        fd, tmp = tempfile.mkstemp(suffix=".png")
        os.close(fd)
        path = tmp
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if tmp is not None:
        Path(tmp).unlink(missing_ok=True)
    if img is None:
        raise RuntimeError(f"Blender wrote no image to {path}")
    return img[:, :, ::-1].copy()
